"""The quick start: run `make run` in the repository, then

    KEY=rk_...  python clients/python/examples/quickstart.py

(KEY is the demo key `make run` printed; REGISTRAR_URL overrides http://127.0.0.1:8000.)
"""

import os

from registrar_client import Registrar, TaskFailed

registrar = Registrar(os.environ.get("REGISTRAR_URL", "http://127.0.0.1:8000"), os.environ["KEY"])

# Every student enrollment since 2020, page after page (the client follows the Link header).
enrollments = registrar.enrollments.list(term__sis_term_code=">=202001", role="student")
first = next(enrollments)
print(enrollments.total, "enrollments; the first:", first.id)
print(first.section.id, first.term.sis_term_code, first.get("final_grade"))

# One by id, and a write: it returns a task; wait() long-polls until it is done.
enrollment = registrar.enrollments.get(first.id)
task = registrar.enrollments.set_course_assessment(
    enrollment.id, submit_date="2020-03-05T17:53:46Z"
)
done = task.wait(timeout=30)
print(done.status, done.path)
print(registrar.enrollments.get(first.id).course_assessment)

# A petition for that student, then the student's petitions.
task = registrar.petitions.create(
    netid=enrollment.netid,
    petition_code="Q41",
    origin_code="UREG",
    school="UG",
    decision="IDP 095",
    grade_term="24F",
)
print("created", task.wait(timeout=30).path)
for petition in registrar.students.petitions(enrollment.netid):
    print(petition.id, petition.petition_code, petition.petition_name, petition.grade_term)

# A task that fails raises TaskFailed with the server's messages.
try:
    registrar.petitions.create(
        netid=enrollment.netid,
        petition_code="Q99",
        origin_code="UREG",
        school="UG",
        grade_term="24F",
    ).wait(timeout=30)
except TaskFailed as failed:
    print("failed:", failed.errors)

registrar.close()

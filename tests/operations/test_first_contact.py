"""First contact: on `make run`'s data (a database filled by `registrar demo`), every sample request
of the three portal pages, every `curl` line of the README and of the demo's own output, and every
example of the OpenAPI document works as written. The README and the document are parsed, so a new
example is tested without a new test.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient

from registrar.app import create_app
from registrar.core.settings import Settings
from tests.support.accounts import cli
from tests.support.databases import make_settings

README = Path(__file__).resolve().parents[2] / "README.md"
BASE = "http://127.0.0.1:8000"  # where `make run` serves, and the README's examples point
# What a working example answers: 201 (a webhook subscription made) and 204 (one deleted) are the
# statuses spec section 7 fixes for those operations.
SUCCESS = (200, 201, 202, 204)

SECTION = {
    "id": "AAAS.010.01-202001-U-10188",
    "lms_section_id": "AAAS.010.01-WI20",
    "sis_section_id": "AAAS.010.01-WI20",
}
TERM = {"id": "202001-U", "lms_term_id": "WI20", "sis_ptrm_code": "U", "sis_term_code": "202001"}
SEED_PETITION = {
    "netid": "f006kdf",
    "petition_code": "Q41",
    "origin_code": "UREG",
    "school": "UG",
    "decision": "IDP 095",
    "grade_term": "24F",
    "user_netid": "f006s0b",
}


@pytest.fixture(scope="module")
def demo_output(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    key_file = tmp_path_factory.mktemp("demo") / "key"
    code, out, err = cli(
        database_url,
        *("demo", "--enrollments", "1500", "--url", BASE, "--key-file", str(key_file)),
    )
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def key(demo_output: str) -> str:
    return next(x for x in demo_output.splitlines() if x.startswith("KEY=")).removeprefix("KEY=")


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    """As `make run` serves: webhooks may go to a receiver on the same machine."""
    return make_settings(database_url, webhook_allow_private=True)


@pytest.fixture(scope="module")
def client(settings: Settings, demo_output: str) -> Iterator[TestClient]:
    """The app (with its worker) answering at `make run`'s address."""
    with TestClient(create_app(settings), base_url=BASE) as client:
        yield client


@pytest.fixture(scope="module")
def token(client: TestClient, key: str) -> str:
    r = client.post("/api/jwt", headers={"Authorization": key})
    assert r.status_code == 200, r.text
    return str(r.json()["jwt"])


def narrow(client: TestClient, key: str, *scopes: str) -> dict[str, str]:
    r = client.post("/api/jwt", params={"scope": " ".join(scopes)}, headers={"Authorization": key})
    assert r.status_code == 200 and r.json()["accepted_scopes"] == list(scopes), r.text
    return {"Authorization": f"Bearer {r.json()['jwt']}"}


def finished(client: TestClient, location: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        r = client.get(location, headers=headers)
        assert r.status_code == 200, r.text
        task: dict[str, Any] = r.json()
        if task["status"] != "accepted":
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.02)


# --- the portal pages' sample requests ----------------------------------------------------------


def test_the_enrollments_pages_samples(client: TestClient, key: str) -> None:
    reader = narrow(client, key, "api:academic:enrollments:read")
    r = client.get(
        "/api/academic/enrollments/AAAS.010.01-202001-U-10188-f002nkd-instructor", headers=reader
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body.pop("cache_date"))
    assert body == {
        "id": "AAAS.010.01-202001-U-10188-f002nkd-instructor",
        "is_active": False,
        "is_in_session": False,
        "netid": "f002nkd",
        "role": "instructor",
        "school_id": "UG",
        "section": SECTION,
        "term": TERM,
    }
    sensitive = narrow(
        client, key, "api:academic:enrollments:read", "api:academic:enrollments:read.sensitive"
    )
    r = client.get(
        "/api/academic/enrollments/AAAS.010.01-202001-U-10188-f001nkx-student", headers=sensitive
    )
    assert r.status_code == 200, r.text
    body = r.json()
    body.pop("cache_date")
    assert body == {
        "final_grade": "A",
        "credit_hours_earned": 1,
        "course_assessment": {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": None},
        "id": "AAAS.010.01-202001-U-10188-f001nkx-student",
        "is_active": False,
        "is_in_session": False,
        "netid": "f001nkx",
        "role": "student",
        "school_id": "UG",
        "section": SECTION,
        "term": TERM,
    }


def test_the_patch_pages_samples(client: TestClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    target = "/api/academic/enrollments/AAAS.010.01-202001-U-10188-f002qt1-student"
    r = client.patch(
        target,
        content=b'{"course_assessment": {"submit_date": "2020-03-05T17:53:46Z", '
        b'"opt_out_date": null}}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted"}
    task = finished(client, r.headers["Location"], headers)
    assert task["status"] == "complete", task
    assert task["path"] == BASE + target
    assert task["message"] == "Enrollment updated successfully."
    # The sample Location, and the sample tasks of the page, answer for the demo account.
    sample = client.get("/api/tasks/5cddb466b68a450c3b102bfd", headers=headers).json()
    assert sample["status"] == "complete" and sample["path"] == BASE + target
    done = client.get("/api/tasks/630cf2e78b1c6c251cfbc125", headers=headers).json()
    assert done["status"] == "complete" and done["message"] == "Enrollment updated successfully."
    failed = client.get("/api/tasks/630cf3b161b5fada66eb9358", headers=headers).json()
    assert failed["status"] == "error" and failed["path"] == BASE + target
    assert failed["message"] == (
        "['Payload is invalid, contains values for both submit_date and opt_out_date.']"
    )


def test_the_petitions_pages_samples(client: TestClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post(
        "/api/academic/petitions",
        json={"petition": SEED_PETITION},
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted"}
    assert re.fullmatch(r"/api/tasks/[0-9a-f]{24}", r.headers["Location"])
    task = finished(client, r.headers["Location"], headers)
    assert task["status"] == "complete", task
    assert task["message"] == "Petition created successfully."
    assert re.fullmatch(re.escape(BASE) + r"/api/academic/petitions/[0-9a-f]{24}", task["path"])
    assert set(task["requester"]) == {"sub", "name", "email", "scope", "exp", "iat"}
    assert task["requester"]["exp"].isdigit() and task["requester"]["iat"].isdigit()
    created = client.get(task["path"].removeprefix(BASE), headers=headers)
    assert created.status_code == 200 and created.json()["netid"] == "f006kdf"
    # The successful sample's task and the petition it created.
    sample = client.get("/api/tasks/673e4c82185254cacb8d2967", headers=headers).json()
    assert sample["status"] == "complete" and sample["resource"] == "academic.petitions"
    assert sample["payload"]["user_netid"] == "F006S0B"
    petition = client.get("/api/academic/petitions/673e4c83255f18cce280f5d7", headers=headers)
    assert petition.status_code == 200, petition.text
    assert petition.json()["petition_name"] == "Degree Requirement Exception"


def test_collections_are_never_empty_on_the_demo(client: TestClient, token: str) -> None:
    """Whatever the day: a term is in session, terms are active, petitions exist."""
    headers = {"Authorization": f"Bearer {token}"}
    for params in ({"is_in_session": "true"}, {"is_active": "true"}, {"role": "ta"}):
        r = client.get("/api/academic/enrollments", params=params, headers=headers)
        assert r.status_code == 200 and r.json(), params
        assert int(r.headers["X-Total-Count"]) > 0
    assert client.get("/api/academic/petitions", headers=headers).json()


# --- the README's examples, and the demo's printed lines -----------------------------------------


def curl_commands(text: str) -> list[str]:
    """The curl commands of the ```sh blocks of a Markdown text (or of plain lines), with the
    `$(...)` of an assignment unwrapped."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "```" in text else [text]
    commands = []
    for block in blocks:
        for line in block.splitlines():
            found = re.search(r"(?:^|\$\()\s*(curl\s[^|)]*)", line.strip())
            if found:
                commands.append(found.group(1).strip())
    return commands


def run_curl(client: TestClient, command: str, env: dict[str, str]) -> tuple[str, str, Any]:
    """Send what the curl command line would: (method, url, response). Understands the options
    the examples use: -s -i -X -H -d -D - -o."""
    for name, value in env.items():
        command = command.replace(f"${name}", value)
    args = shlex.split(command, comments=True)
    assert args[0] == "curl"
    method, url, headers, data = "GET", None, {}, None
    i = 1
    while i < len(args):
        arg = args[i]
        if arg in ("-s", "-i", "-sS"):
            pass
        elif arg in ("-X", "-H", "-d", "--data", "-D", "-o"):
            value = args[i + 1]
            i += 1
            if arg == "-X":
                method = value
            elif arg == "-H":
                name, _, text = value.partition(":")
                headers[name.strip()] = text.strip()
            elif arg in ("-d", "--data"):
                data = value.encode()
                if method == "GET":
                    method = "POST"
        elif arg.startswith("http"):
            url = arg
        else:
            raise AssertionError(f"an option the test does not know: {arg} in {command}")
        i += 1
    assert url is not None and url.startswith(BASE), command
    response = client.request(method, url, headers=headers, content=data)
    return method, url, response


def check_example(client: TestClient, command: str, env: dict[str, str]) -> None:
    _method, _url, r = run_curl(client, command, env)
    assert r.status_code in SUCCESS, f"{command}\n{r.status_code} {r.text[:500]}"
    if r.status_code == 202:
        task = finished(client, r.headers["Location"], {"Authorization": env["AUTH"]})
        assert task["status"] == "complete", f"{command}\n{task}"
    elif "json" in r.headers.get("content-type", ""):
        body = r.json()
        assert body not in ([], {}), f"{command}: an empty answer"


def test_every_readme_example_works_as_written(client: TestClient, key: str, token: str) -> None:
    commands = curl_commands(README.read_text())
    assert len(commands) >= 15, commands
    env = {"KEY": key, "TOKEN": token, "AUTH": f"Bearer {token}"}
    for command in commands:
        check_example(client, command, env)


def test_the_lines_the_demo_prints_work(client: TestClient, key: str, demo_output: str) -> None:
    commands = curl_commands(demo_output)
    assert len(commands) == 2, demo_output
    _method, _url, login = run_curl(client, commands[0], {"KEY": key})
    assert login.status_code == 200
    token = login.json()["jwt"]
    env = {"KEY": key, "TOKEN": token, "AUTH": f"Bearer {token}"}
    check_example(client, commands[1], env)


def test_the_readme_needs_nothing_outside_the_repository() -> None:
    text = README.read_text()
    assert "../shared" not in text and "](../" not in text
    # Commands run from the clone: the CLI through .venv/bin (or after activating it).
    assert ".venv/bin/registrar" in text
    for command in curl_commands(text):
        # URLs as curl sends them: no space (`scope=a b` is "URL using bad/illegal format")
        # and no raw < or > (encoded as %3C and %3E).
        urls = [a for a in shlex.split(command) if a.startswith("http")]
        assert urls and not any(c in url for url in urls for c in " <>"), command


# --- the OpenAPI document's examples -------------------------------------------------------------


def _examples(item: dict[str, Any]) -> list[Any]:
    found = []
    if "example" in item:
        found.append(item["example"])
    examples = item.get("examples")
    if isinstance(examples, dict):
        found += [e["value"] for e in examples.values() if "value" in e]
    elif isinstance(examples, list):
        found += examples
    return found


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for n, v in enumerate(node):
            yield from _walk(v, f"{path}/{n}")


def test_every_openapi_example_validates_against_its_schema(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    components = doc["components"]
    checked = 0
    for _where, node in _walk(doc["paths"]):
        # A parameter or a media type: its examples against its schema.
        schema = node.get("schema")
        if isinstance(schema, dict):
            for example in _examples(node):
                jsonschema.validate(example, {**schema, "components": components})
                checked += 1
    for where, node in _walk(components["schemas"]):
        # A schema with examples (a property of a representation): each against that schema.
        if "type" in node or "$ref" in node or "anyOf" in node:
            for example in (
                node.get("examples", []) if isinstance(node.get("examples"), list) else []
            ):
                try:
                    jsonschema.validate(example, {**node, "components": components})
                except jsonschema.ValidationError as exc:
                    raise AssertionError(f"{where}: {exc.message}") from None
                checked += 1
    assert checked >= 20


def test_every_openapi_example_succeeds_when_sent(client: TestClient, key: str, token: str) -> None:
    """Each operation sent with its examples (path parameters, query examples, the body) and the
    demo account's credentials, as /docs' *Try it out* would: every one succeeds."""
    doc = client.get("/openapi.json").json()
    sent = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            url = path
            params: dict[str, str] = {}
            for parameter in operation.get("parameters", []):
                examples = _examples(parameter)
                if parameter["in"] == "path":
                    assert examples, f"{method} {path}: {parameter['name']} has no example"
                    url = url.replace("{" + parameter["name"] + "}", quote(examples[0], safe=""))
                elif parameter["in"] == "query" and examples:
                    params[parameter["name"]] = examples[0]
            headers = {}
            schemes = {n for req in operation.get("security", []) for n in req}
            if "apiKey" in schemes:
                headers["Authorization"] = key
            elif "bearer" in schemes:
                headers["Authorization"] = f"Bearer {token}"
            body = None
            if "requestBody" in operation:
                media = operation["requestBody"]["content"]["application/json"]
                assert "example" in media, f"{method} {path}: no body example"
                body = orjson.dumps(media["example"])
                headers["Content-Type"] = "application/json"
            r = client.request(method.upper(), url, params=params, headers=headers, content=body)
            assert r.status_code in SUCCESS, f"{method} {url} {params}: {r.status_code} {r.text}"
            if r.status_code == 202:
                task = finished(client, r.headers["Location"], {"Authorization": f"Bearer {token}"})
                assert task["status"] == "complete", (method, path, task)
            sent += 1
    assert sent >= 15


def test_the_document_tells_the_truth(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    schemes = doc["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["apiKey"]["description"],
    }
    assert schemes["bearer"]["type"] == "http" and schemes["bearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in orjson.dumps(doc).decode()
    login = doc["paths"]["/api/jwt"]["post"]
    assert login["security"] == [{"apiKey": []}]
    assert not any(p["name"].lower() == "authorization" for p in login.get("parameters", []))
    patch = doc["paths"]["/api/academic/enrollments/{enrollment_id}"]["patch"]
    assert patch["security"] == [{"bearer": ["api:academic:enrollments:write"]}]
    assert "`api:academic:enrollments:write`" in patch["description"]
    assert set(patch["responses"]) == {
        "200",  # with Prefer: wait, the finished task
        "202",
        "400",
        "401",
        "403",
        "404",
        "408",
        "413",
        "415",
        "422",
        "503",
    }
    example = patch["requestBody"]["content"]["application/json"]["example"]
    assert example == {
        "course_assessment": {"submit_date": "2020-03-05T17:53:46Z", "opt_out_date": None}
    }
    task = doc["paths"]["/api/tasks/{task_id}"]["get"]
    # Any valid token: no 403; 400 for a malformed ?wait.
    assert set(task["responses"]) == {"200", "400", "401", "404", "503"}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert "422" not in codes or (method in ("patch", "post") and path != "/api/jwt")
            # Rate limiting is off here; failed logins are throttled by default.
            assert ("429" in codes) == (path == "/api/jwt"), (method, path)
            if operation.get("security") and path.startswith("/api/"):
                assert {"401", "503"} <= codes, (method, path)


def test_429_is_documented_when_rate_limiting_is_on(database_url: str) -> None:
    """Only tokens are counted: the operations that take one document 429; the login documents
    it only while failed logins are throttled (its own 429, without RateLimit-* headers)."""
    settings = make_settings(
        database_url, rate_limit_per_minute=100, login_failures_per_minute=0, run_worker=False
    )
    with TestClient(create_app(settings)) as limited:
        doc = limited.get("/openapi.json").json()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            bearer = any("bearer" in req for req in operation.get("security", []))
            assert ("429" in operation["responses"]) == bearer, (method, path)
            if bearer:
                assert "Retry-After" in operation["responses"]["429"]["headers"]
    with TestClient(create_app(make_settings(database_url, run_worker=False))) as default:
        login = default.get("/openapi.json").json()["paths"]["/api/jwt"]["post"]
    assert set(login["responses"]["429"]["headers"]) == {"Retry-After"}
    assert "failed logins" in login["responses"]["429"]["description"]

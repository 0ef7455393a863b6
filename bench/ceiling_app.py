"""The framework's ceiling: the same stack (FastAPI, uvicorn) answering a constant enrollment."""

from __future__ import annotations

from fastapi import FastAPI

from registrar.http.responses import FastJSON

ENROLLMENT = {
    "cache_date": "2020-06-15T04:43:15Z",
    "id": "AAAS.010.01-202001-U-10188-f002nkd-instructor",
    "is_active": False,
    "is_in_session": False,
    "netid": "f002nkd",
    "role": "instructor",
    "school_id": "UG",
    "section": {
        "id": "AAAS.010.01-202001-U-10188",
        "lms_section_id": "AAAS.010.01-WI20",
        "sis_section_id": "AAAS.010.01-WI20",
    },
    "term": {
        "id": "202001-U",
        "lms_term_id": "WI20",
        "sis_ptrm_code": "U",
        "sis_term_code": "202001",
    },
}

app = FastAPI()


@app.get("/api/academic/enrollments/{enrollment_id}")
async def constant(enrollment_id: str) -> FastJSON:
    return FastJSON(ENROLLMENT)

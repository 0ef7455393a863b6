"""The scopes the registrar knows, in the portal's words."""

ENROLLMENTS_READ = "api:academic:enrollments:read"
ENROLLMENTS_READ_SENSITIVE = "api:academic:enrollments:read.sensitive"
ENROLLMENTS_WRITE = "api:academic:enrollments:write"
PETITIONS_READ = "api:academic:petitions:read"
PETITIONS_WRITE = "api:academic:petitions:write"
PEOPLE_PRIVATE = "urn:dartmouth:people:private"

ALL_SCOPES: tuple[str, ...] = (
    ENROLLMENTS_READ,
    ENROLLMENTS_READ_SENSITIVE,
    ENROLLMENTS_WRITE,
    PETITIONS_READ,
    PETITIONS_WRITE,
    PEOPLE_PRIVATE,
)

DESCRIPTIONS = {
    ENROLLMENTS_READ: "read enrollments",
    ENROLLMENTS_READ_SENSITIVE: "read sensitive enrollment attributes (final_grade, ...)",
    ENROLLMENTS_WRITE: "write enrollment attributes (course_assessment)",
    PETITIONS_READ: "read student petitions",
    PETITIONS_WRITE: "create student petitions",
    PEOPLE_PRIVATE: "see records of FERPA-protected (confidential) people",
}


def parse_scopes(raw: str | None) -> list[str]:
    """Scopes arrive space- or comma-separated; keep their order, drop blanks and repeats."""
    if not raw:
        return []
    seen: dict[str, None] = {}
    for part in raw.replace(",", " ").split():
        seen.setdefault(part, None)
    return list(seen)

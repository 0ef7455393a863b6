"""Collections, the same for every resource: the filter grammar, found sets and pages (data only:
http/responses.py writes the headers)."""

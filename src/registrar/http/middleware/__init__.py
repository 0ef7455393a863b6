"""Pure ASGI middleware, outermost first as app.py adds it: observability, security headers, the
last-resort 500, CORS, the body cap and timeout, the rate limit."""

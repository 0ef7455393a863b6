"""The web layer: dependencies, problem documents, request bodies, responses, OpenAPI helpers and
the middleware (middleware/). Only this package, app.py and the routers know FastAPI/Starlette."""

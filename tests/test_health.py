from fastapi.testclient import TestClient


def test_health_answers_when_database_is_reachable(api: TestClient) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_route_is_problem_json(api: TestClient) -> None:
    response = api.get("/api/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404

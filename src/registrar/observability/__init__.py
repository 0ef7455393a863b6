"""What an operator sees: logs (API and worker alike), Prometheus metrics, /health and /metrics."""

"""livemetrics: streaming, real-time metrics for customer-service chat."""

__version__ = "0.1.0"

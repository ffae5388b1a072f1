"""Helpers mirroring ``tinker.lib`` (``tinkex.lib.retry_handler.RetryConfig``)."""

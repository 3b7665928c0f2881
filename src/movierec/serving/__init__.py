"""The recommendation service: create_app(registry) -> FastAPI, the feedback store, the web page."""

"""The recommendation service: `create_app(settings) -> FastAPI` (app.py), its settings
(`ServeSettings`, settings.py), the routes (routes/, one APIRouter per resource) and their
dependencies (deps.py), the model server that loads, swaps and watches the served version
(server.py), the served model (state.py), the feedback store (store.py), the web page (web/)."""

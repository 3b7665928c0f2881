"""The service's routes: one `APIRouter` per resource, included by `create_app` in this order.

status (/health, /ready), recommend (/recommend, /recommend/batch, /recommend_cold),
movies (/similar/{id}, /movies, /movies/{id}), onboarding, ratings (/ratings,
/profile/recommend), admin (/admin/...), page (/ and /static).
"""

from movierec.serving.routes import admin, movies, onboarding, page, ratings, recommend, status

#: every router, in the order the app includes them (the order of the OpenAPI paths)
ROUTERS = (status.router, recommend.router, movies.router, onboarding.router, ratings.router, admin.router,
           page.router)

__all__ = ["ROUTERS", "admin", "movies", "onboarding", "page", "ratings", "recommend", "status"]

"""``/api/v1/`` routes of claims."""

from rest_framework.routers import SimpleRouter

from claims.api import views

router = SimpleRouter()
router.register("claims", views.ClaimViewSet, basename="api-claim")

urlpatterns = router.urls

"""``/api/v1/`` routes of after-sales, parcels and intercepts."""

from rest_framework.routers import SimpleRouter

from intercepts.api import views

router = SimpleRouter()
router.register("after-sales", views.AfterSaleViewSet, basename="api-after-sale")
router.register("parcels", views.ParcelViewSet, basename="api-parcel")
router.register("intercepts", views.InterceptViewSet, basename="api-intercept")

urlpatterns = router.urls

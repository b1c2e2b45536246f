"""``/api/v1/`` routes of after-sales, parcels, intercepts, shipments and their anomalies."""

from rest_framework.routers import SimpleRouter

from intercepts.api import views

router = SimpleRouter()
router.register("after-sales", views.AfterSaleViewSet, basename="api-after-sale")
router.register("parcels", views.ParcelViewSet, basename="api-parcel")
router.register("intercepts", views.InterceptViewSet, basename="api-intercept")
router.register("shipments", views.ShipmentViewSet, basename="api-shipment")
router.register("shipment-anomalies", views.ShipmentAnomalyViewSet, basename="api-shipment-anomaly")

urlpatterns = router.urls

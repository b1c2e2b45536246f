"""Pages of platform finance (and superusers) only: finance exports, claim payouts."""

from billing.services import is_finance


class FinanceOnlyMixin:
    """Only platform finance sees the page in the sidebar or opens it; nobody adds, changes or
    deletes anything through the admin's own views (the pages' forms call services)."""

    def _finance(self, request) -> bool:
        # Asked several times a page (sidebar, permissions): the group lookup once per request.
        if not hasattr(request, "_billing_finance"):
            user = request.user
            request._billing_finance = user.is_active and user.is_staff and is_finance(user)
        return request._billing_finance

    def has_module_permission(self, request):
        return self._finance(request)

    def has_view_permission(self, request, obj=None):
        return self._finance(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

"""Who may see which shop: one place that answers it for the admin, the API and selectors."""

from dataclasses import dataclass, field

from django.contrib.auth.models import Group
from django.db.models import IntegerField, Value

from shops.models import PLATFORM_GROUPS, ShopMembership


@dataclass(frozen=True)
class Access:
    """What one user may reach: platform groups, and a role per shop."""

    is_superuser: bool = False
    platform_groups: frozenset[str] = frozenset()
    shop_roles: dict[int, str] = field(default_factory=dict)
    # The name of the API key the request came with (its user acts for its one shop), or "".
    api_key: str = ""

    @property
    def is_platform(self) -> bool:
        return self.is_superuser or bool(self.platform_groups)

    @property
    def sees_all_shops(self) -> bool:
        return self.is_platform

    @property
    def shop_ids(self) -> list[int]:
        return sorted(self.shop_roles)

    def acts_for(self, shop_id: int) -> bool:
        """Whether the user acts for the shop in the workbench: its owner or an after-sales
        agent (a viewer only looks; platform staff act through their own channels)."""
        return self.shop_roles.get(shop_id) in (
            ShopMembership.Role.OWNER,
            ShopMembership.Role.AGENT,
        )

    def roles(self, shop_id: int | None = None) -> set[str]:
        """Every role the user holds: platform groups plus the shop role(s).

        With a shop, only the role in that shop counts; without one, any shop's role does
        (the question is then "may they do this somewhere").
        """
        held: set[str] = set(self.platform_groups)
        if shop_id is None:
            held.update(self.shop_roles.values())
        elif shop_id in self.shop_roles:
            held.add(self.shop_roles[shop_id])
        return held


ANONYMOUS = Access()


def access_for(user) -> Access:
    """Load (once per request user object) the user's platform groups and shop roles."""
    if user is None or not user.is_authenticated or not user.is_active:
        return ANONYMOUS
    cached = getattr(user, "_shop_access", None)
    if cached is not None:
        return cached
    # Memberships, and platform groups as rows with no shop: one round trip for both.
    memberships = ShopMembership.objects.filter(user=user).values_list("shop_id", "role")
    groups = (
        Group.objects.filter(user=user, name__in=PLATFORM_GROUPS)
        .annotate(shop_id=Value(None, output_field=IntegerField()))
        .values_list("shop_id", "name")
    )
    shop_roles: dict[int, str] = {}
    platform: set[str] = set()
    for shop_id, name in memberships.order_by().union(groups.order_by(), all=True):
        if shop_id is None:
            platform.add(name)
        else:
            shop_roles[shop_id] = name
    access = Access(
        is_superuser=user.is_superuser,
        platform_groups=frozenset(platform),
        shop_roles=shop_roles,
    )
    user._shop_access = access
    return access


def visible_shop_ids(user) -> list[int] | None:
    """The shops a user may see, or None for every shop (platform staff)."""
    access = access_for(user)
    return None if access.sees_all_shops else access.shop_ids


def scope_to_shops(queryset, user, shop_path: str = "shop"):
    """Restrict a queryset to the shops the user may see; platform staff see all."""
    access = access_for(user)
    if access.sees_all_shops:
        return queryset
    if not access.shop_roles:
        return queryset.none()
    return queryset.filter(**{f"{shop_path}__in": access.shop_ids})

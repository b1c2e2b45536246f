"""System checks for the workbench's settings."""

from django.core import checks


@checks.register()
def list_frames_settings(app_configs, **kwargs):
    from intercepts.admin_frames import frames, unfold_settings_vary_per_request

    found = unfold_settings_vary_per_request()
    if not found or frames.max_bytes <= 0:
        return []
    return [
        checks.Warning(
            "Workbench list pages are rendered whole on every request: "
            f"{', '.join(found)} can change the page per request.",
            hint="Remove those Unfold settings, or set WORKBENCH_FRAME_CACHE_MB=0 to say so.",
            id="intercepts.W001",
        )
    ]

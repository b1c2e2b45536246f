"""The workbench speaks Simplified Chinese by default and English on request."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import django.contrib.admin
import polib
import pytest
import unfold
from django.apps import apps
from django.urls import reverse
from django.utils import translation
from django.utils.translation.trans_real import DjangoTranslation
from django.views.i18n import JavaScriptCatalog

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = sorted(ROOT.glob("locale/**/LC_MESSAGES/*.po"))
OUR_APPS = ("intercepts", "couriers", "shops", "billing", "claims")
UNFOLD_CATALOGUE = ROOT / "locale" / "unfold" / "zh_Hans" / "LC_MESSAGES" / "django.po"
ADMIN_LOCALE = Path(django.contrib.admin.__file__).parent / "locale"


def test_there_are_catalogues_for_the_project_and_unfold():
    names = {str(p.relative_to(ROOT)) for p in CATALOGUES}
    assert "locale/zh_Hans/LC_MESSAGES/django.po" in names
    assert "locale/unfold/zh_Hans/LC_MESSAGES/django.po" in names


@pytest.mark.parametrize("po_path", CATALOGUES, ids=lambda p: str(p.relative_to(ROOT)))
def test_catalogue_is_complete_and_compiled(po_path):
    po = polib.pofile(str(po_path))
    assert not po.untranslated_entries()
    assert not po.fuzzy_entries()
    mo = polib.mofile(str(po_path.with_suffix(".mo")))
    compiled = {(e.msgctxt, e.msgid): (e.msgstr, e.msgstr_plural) for e in mo}
    for entry in po.translated_entries():
        assert compiled.get((entry.msgctxt, entry.msgid)) == (entry.msgstr, entry.msgstr_plural), (
            f"{po_path.name}: “{entry.msgid}” differs from the .mo; run `make messages`"
        )


needs_gettext = pytest.mark.skipif(
    shutil.which("xgettext") is None,
    reason="extracting Unfold's strings needs GNU gettext (xgettext); CI installs it",
)


@pytest.fixture(scope="module")
def installed_unfold_msgids(tmp_path_factory):
    """The msgids of the installed Unfold, extracted the way our catalogue of them is made:
    Django's makemessages (which needs GNU gettext) run over a copy of the package."""
    source = tmp_path_factory.mktemp("unfold") / "unfold"
    shutil.copytree(
        Path(unfold.__file__).parent,
        source,
        ignore=shutil.ignore_patterns("__pycache__", "static", "locale"),
    )
    (source / "locale").mkdir()
    # Without settings, makemessages writes into the package's own locale folder only.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans"],
        cwd=source,
        env=env,
        check=True,
        capture_output=True,
    )
    extracted = polib.pofile(str(source / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))
    return {(entry.msgctxt, entry.msgid) for entry in extracted}


@needs_gettext
def test_every_string_of_the_installed_unfold_has_a_chinese_translation(installed_unfold_msgids):
    translated = {
        (entry.msgctxt, entry.msgid)
        for entry in polib.pofile(str(UNFOLD_CATALOGUE)).translated_entries()
    }
    assert sorted(installed_unfold_msgids - translated, key=str) == []


@needs_gettext
def test_the_unfold_catalogue_holds_only_strings_the_installed_unfold_has(
    installed_unfold_msgids,
):
    ours = {(entry.msgctxt, entry.msgid) for entry in polib.pofile(str(UNFOLD_CATALOGUE))}
    assert sorted(ours - installed_unfold_msgids, key=str) == []


def test_every_string_of_the_admin_javascript_has_a_chinese_translation():
    """The admin's JavaScript catalogue, as the admin serves it in Chinese, translates every
    string of Django's admin scripts (Django's zh_Hans catalogue lags behind them; locale/admin
    fills the gap)."""
    source = polib.pofile(str(ADMIN_LOCALE / "en" / "LC_MESSAGES" / "djangojs.po"))
    view = JavaScriptCatalog(packages=["django.contrib.admin"])
    view.translation = DjangoTranslation(
        "zh-hans", domain="djangojs", localedirs=view.get_paths(view.packages)
    )
    catalog = view.get_catalog()
    missing = [
        entry.msgid
        for entry in source
        if not catalog.get(f"{entry.msgctxt}\x04{entry.msgid}" if entry.msgctxt else entry.msgid)
    ]
    assert missing == []


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_app_has_a_chinese_name():
    with translation.override("zh-hans"):
        names = {app: str(apps.get_app_config(app).verbose_name) for app in OUR_APPS}
    assert {app: name for app, name in names.items() if not _is_chinese(name)} == {}


def test_every_model_and_field_has_a_chinese_name():
    missing = []
    with translation.override("zh-hans"):
        for app in OUR_APPS:
            for model in apps.get_app_config(app).get_models():
                names = [
                    ("model", model._meta.verbose_name),
                    ("plural", model._meta.verbose_name_plural),
                ]
                names += [
                    (field.name, field.verbose_name)
                    for field in model._meta.get_fields()
                    if hasattr(field, "verbose_name") and not field.auto_created
                ]
                for name, label in names:
                    if not _is_chinese(str(label)):
                        missing.append(f"{model.__name__}.{name}: {label}")
    assert not missing, missing


def test_admin_is_chinese_by_default(world, login):
    body = login(world.owner).get(reverse("admin:intercepts_aftersale_changelist")).content
    text = body.decode()
    assert "售后单" in text and "待商家处理" in text and "筛选" in text


def test_admin_is_english_when_the_browser_asks(world, login):
    client = login(world.owner)
    response = client.get(
        reverse("admin:intercepts_aftersale_changelist"), HTTP_ACCEPT_LANGUAGE="en"
    )
    text = response.content.decode()
    assert "After-sales" in text and "Awaiting merchant" in text
    assert "待商家处理" not in text

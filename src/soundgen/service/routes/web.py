"""The web page, its static files, and the API docs (Swagger UI served from a local package, no CDN)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
router = APIRouter(include_in_schema=False)


def swagger_dir() -> Path | None:
    """The Swagger UI files of the ``swagger-ui-bundle`` package, when it is installed."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    path = Path(swagger_ui_bundle.swagger_ui_path)
    return path if (path / "swagger-ui-bundle.js").is_file() else None


@router.get("/")
def index() -> FileResponse:
    """The page."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


# The page of one sound is the same file for every address: whether a job exists, and whose it is, only the API
# says, to the key that asks (404 for a job that is someone else's, as for one that never was).
_SOUND_HEADERS = {"Cache-Control": "no-cache", "X-Robots-Tag": "noindex", "Referrer-Policy": "no-referrer"}


@router.get("/sound/{job_id}")
@router.get("/sound/{job_id}/{index}")
def sound_page(job_id: str, index: str | None = None) -> FileResponse:
    """The page of one sound (or every sound of one job): a link to share."""
    return FileResponse(WEB_DIR / "sound.html", media_type="text/html", headers=_SOUND_HEADERS)


@router.get("/docs")
def docs() -> HTMLResponse:
    """Interactive API docs, with every asset served by this app (works offline)."""
    if swagger_dir() is None:
        return HTMLResponse(
            "<!doctype html><title>soundgen API</title><h1>soundgen API</h1><p>The interactive docs need the "
            "<code>swagger-ui-bundle-v2</code> package (pip install 'soundgen[service]'). The API description "
            "is at <a href='/openapi.json'>/openapi.json</a>.</p>")
    return get_swagger_ui_html(openapi_url="/openapi.json", title="soundgen API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css",
                               swagger_favicon_url="/static/favicon.svg")


def mount_static(app: FastAPI) -> None:
    """Serve ``web/`` at ``/static`` and Swagger UI's files at ``/docs-assets``."""
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    path = swagger_dir()
    if path is not None:
        app.mount("/docs-assets", StaticFiles(directory=path), name="docs-assets")
    else:
        log.info("swagger-ui-bundle-v2 is not installed: /docs shows a link to /openapi.json instead")

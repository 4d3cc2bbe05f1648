"""Where 3Dmol.js comes from, and how a py3Dmol view becomes HTML.

py3Dmol (``py3Dmol.view(js=URL)``) writes HTML whose script loads 3Dmol.js from
``js`` (by default the jsDelivr CDN, ``3dmol@<py3Dmol version>``) into the page
once, as the global promise ``$3Dmolpromise``, and builds the viewer when it
resolves.  Offline machines cannot reach the CDN, so qpt_nb lets you choose the
source, in order of precedence:

1. ``qpt_nb.viz.set_3dmol_js(source)`` (``set_3dmol_js(None)`` restores the default);
2. the environment variable ``QPT_NB_3DMOL_JS``;
3. py3Dmol's CDN URL.

``source`` is either

* a **local file** (e.g. ``node_modules/3dmol/build/3Dmol-min.js`` from
  ``npm install 3dmol@<py3Dmol version>``): its text (about 540 kB) is *inlined*
  into the HTML and loaded through a ``blob:`` URL.  Inside a kernel it is
  inlined into the first view displayed in the session only (later views reuse
  the page's ``$3Dmolpromise``); ``save_html`` files always carry it, so they
  work without any network; or
* a **URL** (``http(s)://...``, ``//host/...`` or a server path such as
  ``/files/3Dmol-min.js`` served by Jupyter): py3Dmol loads it with a script tag.

Every view built here also carries a static fallback image (a matplotlib slice
or a 2D sketch) inside the viewer's ``<div>``: it is removed when 3Dmol.js has
loaded, so front ends that cannot run the script (GitHub, nbviewer, an offline
browser without a local 3Dmol.js) still show something.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import warnings
from pathlib import Path
from typing import Optional

from qpt_nb.settings import THREEDMOL_JS_ENV as ENV_VAR
from qpt_nb.settings import threedmol_js

_setting: Optional[str] = None
_inlined_in_session = False

__all__ = [
    "ENV_VAR",
    "set_3dmol_js",
    "get_3dmol_js",
    "default_3dmol_url",
    "new_view",
    "view_html",
    "mimebundle",
    "reset_session",
]


def default_3dmol_url() -> str:
    """py3Dmol's own default: jsDelivr, the 3Dmol.js version matching py3Dmol."""
    try:
        import py3Dmol

        version = py3Dmol.__version__
    except Exception:  # pragma: no cover - py3Dmol missing
        version = "2.5.5"
    return f"https://cdn.jsdelivr.net/npm/3dmol@{version}/build/3Dmol-min.js"


def _looks_like_url(s: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", s)) or s.startswith("/")


def _classify(source: str, origin: str) -> dict:
    s = str(source).strip()
    if s.startswith("file://"):
        s = s[len("file://") :]
    if Path(s).expanduser().is_file():
        return dict(kind="inline", path=str(Path(s).expanduser().resolve()), url=None, origin=origin)
    if _looks_like_url(s):  # http(s)://..., //cdn/..., or a server path /files/...
        return dict(kind="url", url=s, path=None, origin=origin)
    raise ValueError(
        f"3Dmol.js source {source!r} ({origin}) is neither an existing file nor a URL; "
        "give the path of 3Dmol-min.js (e.g. node_modules/3dmol/build/3Dmol-min.js) "
        "or an http(s) URL"
    )


def set_3dmol_js(source: Optional[str] = None) -> dict:
    """Sets where 3Dmol.js is loaded from (a local file to inline, or a URL).

    ``None`` restores the default (env ``QPT_NB_3DMOL_JS``, else the CDN).
    Raises ValueError for a source that is neither a file nor a URL.
    Returns the resolved setting (see `get_3dmol_js`).
    """
    global _setting, _inlined_in_session
    if source is None:
        _setting = None
    else:
        _classify(source, "set_3dmol_js")  # validate now, not at first view
        _setting = str(source)
    _inlined_in_session = False
    return get_3dmol_js()


def get_3dmol_js() -> dict:
    """The resolved source: dict(kind='url'|'inline', url=..., path=..., origin=...)."""
    if _setting is not None:
        return _classify(_setting, "set_3dmol_js")
    env = threedmol_js()
    if env:
        try:
            return _classify(env, f"${ENV_VAR}")
        except ValueError as exc:
            warnings.warn(f"{exc}; using the CDN instead", RuntimeWarning, stacklevel=2)
    return dict(kind="url", url=default_3dmol_url(), path=None, origin="default")


def reset_session():
    """Forget that the library was inlined already (call after reloading the page)."""
    global _inlined_in_session
    _inlined_in_session = False


@functools.lru_cache(maxsize=4)
def _read_js(path: str, mtime: float) -> str:
    return Path(path).read_text(encoding="utf-8")


def _js_string(text: str) -> str:
    """A JavaScript string literal that is safe inside an HTML <script> element."""
    return json.dumps(text).replace("</", "<\\/").replace("<!--", "<\\!--")


def new_view(width: int = 420, height: int = 320):
    """A ``py3Dmol.view`` pointed at the configured 3Dmol.js URL (inlining is done
    later, when the HTML is produced)."""
    import py3Dmol

    src = get_3dmol_js()
    url = src["url"] if src["kind"] == "url" else default_3dmol_url()
    return py3Dmol.view(width=width, height=height, js=url)


def _png_img(png: Optional[bytes], uid_token: str, width, height, note: str) -> str:
    if not png:
        return ""
    b64 = base64.b64encode(png).decode("ascii")
    return (
        f'<div id="qptfallback_{uid_token}" style="position:absolute;left:0;top:0;'
        f'width:{width};height:{height};background:white;z-index:1">'
        f'<img alt="static view" style="max-width:100%;max-height:100%" '
        f'src="data:image/png;base64,{b64}"/>'
        f'<div style="position:absolute;bottom:2px;left:4px;font-size:10px;color:#666">'
        f"{note}</div></div>"
    )


def view_html(
    view,
    *,
    fallback_png: Optional[bytes] = None,
    inline: Optional[bool] = None,
    note: str = "static view (3Dmol.js not loaded)",
) -> str:
    """HTML of a py3Dmol view with qpt_nb's 3Dmol.js source and a static fallback.

    inline: embed the local 3Dmol.js (only when the source is a local file);
    None = embed it once per session.
    """
    global _inlined_in_session
    html = view._make_html()  # py3Dmol: replaces UNIQUEID and resets updatejs
    uid = view.uniqueid
    src = get_3dmol_js()
    # --- static fallback inside the viewer div, removed when the library has loaded
    m = re.search(
        r'<div id="3dmolviewer_%s"\s+style="position: relative; width: ([^;]*); '
        r'height: ([^;]*);">' % uid,
        html,
    )
    if m is not None:
        img = _png_img(fallback_png, uid, m.group(1), m.group(2), note)
        html = html[: m.end()] + img + html[m.end() :]
    html = html.replace(
        "$3Dmolpromise.then(function() {\n",
        "$3Dmolpromise.then(function() {\n"
        f'var fb_{uid} = document.getElementById("qptfallback_{uid}"); if (fb_{uid}) fb_{uid}.remove();\n'
        f'var w_{uid} = document.getElementById("3dmolwarning_{uid}"); if (w_{uid}) w_{uid}.remove();\n',
        1,
    )
    # --- local library: replace the script-tag load by a blob: URL of the inlined text
    if src["kind"] == "inline":
        do_inline = (not _inlined_in_session) if inline is None else bool(inline)
        if do_inline:
            text = _read_js(src["path"], os.path.getmtime(src["path"]))
            loader = (
                "loadScriptAsync(URL.createObjectURL(new Blob([%s], "
                "{type: 'text/javascript'})))" % _js_string(text)
            )
            old = "loadScriptAsync('%s')" % default_3dmol_url()
            if old not in html:  # pragma: no cover - py3Dmol changed
                raise RuntimeError("py3Dmol's HTML changed: cannot inline the local 3Dmol.js")
            html = html.replace(old, loader, 1)
            if inline is None:
                _inlined_in_session = True
    return html


def mimebundle(
    view, *, fallback_png: Optional[bytes] = None, inline: Optional[bool] = None, text: str = "3D view"
) -> dict:
    """Display data for IPython: the 3Dmol HTML (fallback image inside) and a text line."""
    return {"text/html": view_html(view, fallback_png=fallback_png, inline=inline), "text/plain": text}


def standalone_page(html: str, title: str = "qpt_nb view") -> str:
    return (
        '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>%s</title></head>\n'
        '<body style="margin:0;padding:0">\n%s\n</body>\n</html>\n' % (title, html)
    )

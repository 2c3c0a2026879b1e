"""Screenshots of the rendered docs site as a reader sees it: the home page, one module page and one report page.

Headless Chromium (Debian's `chromium`: `apt-get install chromium`) loads each page from a local HTTP server over
`_docs/` (the site's search and navigation scripts need http, not file://) and saves a full-width PNG. Not run by CI
(a browser start costs seconds per page); run after `python scripts/make_site.py`:

    python scripts/site_screenshots.py [--out screenshots] [--pages index.html core.html reports/sweep-qa.html]
"""
import argparse, functools, http.server, subprocess, tempfile, threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ['index.html', 'core.html', 'reports/sweep-qa.html']
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--hide-scrollbars']       # no network here: keep Chromium from calling out

def serve(folder):
    "A quiet HTTP server over `folder` on a free port, in a thread; returns (server, port)."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]

def shoot(chromium, url, png, width=1400, height=2200):
    with tempfile.TemporaryDirectory() as prof:
        r = subprocess.run([chromium, *FLAGS, f'--user-data-dir={prof}', f'--window-size={width},{height}', f'--screenshot={png}',
                            '--virtual-time-budget=5000', url], capture_output=True, text=True, timeout=120)
    if not Path(png).exists(): raise RuntimeError(f'no screenshot of {url}: {r.stderr[-1500:]}')

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--docs', default=str(ROOT / '_docs')); ap.add_argument('--out', default='screenshots')
    ap.add_argument('--pages', nargs='+', default=PAGES); ap.add_argument('--chromium', default='/usr/bin/chromium')
    a = ap.parse_args()
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    srv, port = serve(a.docs)
    try:
        for p in a.pages:
            png = out / (p.replace('/', '_').replace('.html', '.png'))
            shoot(a.chromium, f'http://127.0.0.1:{port}/{p}', png)
            print(f'{p} -> {png} ({png.stat().st_size // 1024} KiB)')
    finally: srv.shutdown()

if __name__ == '__main__': main()

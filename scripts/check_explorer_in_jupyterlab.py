"""A manual check that the explorer works in a real JupyterLab: start a server on a scratch notebook, open it in headless
Chromium, run it, move the α slider with the keyboard and require the read-out to change and the figure to be drawn.

Not run by CI (it needs a browser). JupyterLab comes with the project's set-up (`pip install -e ".[dev]"`), so the
server and the notebook's kernel are the project's venv; besides that it needs Playwright's Python package and Chromium:
    .venv/bin/pip install playwright        # `playwright install` is not needed
    apt-get install chromium                # or pass --chromium

    .venv/bin/python scripts/check_explorer_in_jupyterlab.py [--chromium /usr/bin/chromium]
It prints the read-out before and after the move, writes two screenshots to --out and exits 1 if anything fails.
"""
import argparse, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READOUT = """() => { const r = [...document.querySelectorAll('.jp-Notebook .widget-html')].find(e => e.innerText.includes('measured grid point'));
                   return r ? r.innerText : null; }"""
FIGURES = "() => document.querySelectorAll('.jp-Notebook .widget-output img').length"

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--kernel-python', default=sys.executable, help='python of the venv sitv is installed in (default: this one, which also runs JupyterLab)')
    ap.add_argument('--chromium', default='/usr/bin/chromium')
    ap.add_argument('--port', type=int, default=8899)
    ap.add_argument('--out', default='.', help='folder for the screenshots')
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright
    work = Path(tempfile.mkdtemp(prefix='sitv-lab-'))
    subprocess.run([a.kernel_python, '-m', 'ipykernel', 'install', '--prefix', str(work / 'k'), '--name', 'sitv-check'], check=True, capture_output=True)
    src = (f"import os; os.environ['HF_HUB_OFFLINE'] = '1'\nfrom sitv.explorer import Explorer\n"
           f"Explorer({str(ROOT / 'reports' / 'results')!r}, task='qa', generate=False)")
    nb = dict(cells=[dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=src)], nbformat=4, nbformat_minor=5,
              metadata=dict(kernelspec=dict(name='sitv-check', display_name='sitv-check', language='python')))
    (work / 'check.ipynb').write_text(json.dumps(nb))
    env = {**os.environ, 'JUPYTER_PATH': str(work / 'k' / 'share' / 'jupyter'), 'HF_HUB_OFFLINE': '1'}
    lab = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', f'--port={a.port}', '--IdentityProvider.token=',
                            '--ServerApp.password=', f'--ServerApp.root_dir={work}', '--allow-root'], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=a.chromium, args=['--no-sandbox', '--disable-gpu'])
            page = browser.new_page(viewport={'width': 1500, 'height': 1300})
            errors = []; page.on('pageerror', lambda e: errors.append(str(e)))
            for _ in range(60):                                   # wait for the server
                try: page.goto(f'http://localhost:{a.port}/lab/tree/check.ipynb', timeout=5_000); break
                except Exception: time.sleep(1)
            page.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
            try: page.click('.jp-Dialog button:has-text("Select")', timeout=10_000)   # JupyterLab may ask to confirm the kernel
            except Exception: pass
            page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
            page.click('.lm-MenuBar-itemLabel:text-is("Run")'); page.click('.lm-Menu-itemLabel:text-is("Run All Cells")')
            page.wait_for_function(f'() => ({READOUT})() !== null && ({FIGURES})() > 0', timeout=120_000)
            before = page.evaluate(READOUT); page.screenshot(path=str(Path(a.out) / 'explorer_before.png'))
            page.locator('.jp-Notebook .widget-slider:visible').first.locator('.noUi-handle').first.click()
            for _ in range(3): page.keyboard.press('ArrowLeft'); time.sleep(0.3)
            page.wait_for_function(f'(b) => {{ const r = ({READOUT})(); return r !== null && r !== b; }}', arg=before, timeout=60_000)
            time.sleep(1.5)
            after, figures = page.evaluate(READOUT), page.evaluate(FIGURES)
            page.screenshot(path=str(Path(a.out) / 'explorer_after.png'))
            browser.close()
    finally:
        lab.terminate(); lab.wait(30)
    print('read-out before:\n' + before + '\n\nread-out after three ArrowLeft presses on the α slider:\n' + after)
    ok = before != after and figures > 0 and not errors
    print(f"\nfigure images: {figures}; page errors: {errors or 'none'}; {'OK' if ok else 'FAILED'}")
    sys.exit(0 if ok else 1)

if __name__ == '__main__': main()

// Headless-Chromium check of a running JupyterLab (driven by scripts/browser_test.py).
//
//   node tests/browser/notebook_ui.mjs <lab-url-with-token> <notebook-name> <artifact-dir>
//
// Opens the notebook, runs all cells, then checks that
//   1. the orbital view's 3Dmol.js canvas is rendered (WebGL canvas with a non-zero size,
//      static fallback image removed),
//   2. the TrainingDashboard's widgets are rendered (Start / Pause / Step buttons, curve image),
//   3. pressing Step trains and redraws the curve (the curve image changes).
// Screenshots and the browser console log go to <artifact-dir>.  Exit code 0 = pass.
// Environment: CHROMIUM (browser binary, default: chromium on PATH), TIMEOUT_S (run-all limit).
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execSync } from "node:child_process";
import UPNG from "upng-js";

const [labUrl, notebook, artifacts] = process.argv.slice(2);
if (!labUrl || !notebook || !artifacts) {
  console.error("usage: node notebook_ui.mjs <lab-url?token=...> <notebook.ipynb> <artifact-dir>");
  process.exit(2);
}
const timeoutMs = 1000 * Number(process.env.TIMEOUT_S || 420);
fs.mkdirSync(artifacts, { recursive: true });
const consoleLog = [];
const log = (...a) => { const line = a.join(" "); console.log(line); consoleLog.push("[test] " + line); };

function browserPath() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    try { return execSync(`command -v ${name}`, { encoding: "utf8" }).trim(); } catch (e) { /* next */ }
  }
  throw new Error("no Chromium found: apt-get install -y chromium (or set CHROMIUM=/path)");
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "qpt-nb-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: browserPath(),
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         // WebGL without a GPU: software rendering (3Dmol.js needs WebGL)
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
});
const page = context.pages()[0] || await context.newPage();
page.on("console", (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
page.on("pageerror", (e) => consoleLog.push(`[pageerror] ${e.message}`));
const failures = [];
const check = (ok, what) => { log(`${ok ? "PASS" : "FAIL"}: ${what}`); if (!ok) failures.push(what); };
const shot = async (name) => {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file, fullPage: false });
  log(`screenshot ${file}`);
};

try {
  const url = new URL(labUrl);
  url.pathname = url.pathname.replace(/\/?$/, "/") + `lab/tree/${notebook}`;
  log(`opening ${url.pathname}`);
  await page.goto(url.toString(), { waitUntil: "domcontentloaded", timeout: 120000 });
  await page.waitForFunction(() => window.jupyterapp && window.jupyterapp.shell, null, { timeout: 120000 });
  await page.waitForSelector(".jp-NotebookPanel .jp-Cell", { timeout: 120000 });
  // wait for the kernel to be ready
  await page.waitForFunction(() => {
    const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k && k.status === "idle";
  }, null, { timeout: 120000 });
  log("kernel idle; running all cells");
  const t0 = Date.now();
  await page.evaluate(() => window.jupyterapp.commands.execute("notebook:run-all-cells"));
  // done when every code cell has an execution count and the kernel is idle
  await page.waitForFunction(() => {
    const w = window.jupyterapp.shell.currentWidget;
    const cells = w.content.widgets.filter((c) => c.model.type === "code");
    const k = w.sessionContext.session.kernel;
    return cells.length > 0 && cells.every((c) => c.model.executionCount !== null) && k.status === "idle";
  }, null, { timeout: timeoutMs, polling: 1000 });
  log(`all cells ran in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const errors = await page.$$eval(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
    (els) => els.map((e) => e.innerText).filter((t) => /Traceback|Error/.test(t)));
  const tracebacks = await page.$$(".jp-RenderedText[data-mime-type='application/vnd.jupyter.error']");
  check(tracebacks.length === 0, `no cell raised (${tracebacks.length} error outputs)`);
  if (errors.length) log("stderr:", errors.join("\n---\n").slice(0, 2000));
  await shot("01_after_run_all.png");

  // ---------------------------------------------------------------- 3Dmol canvas
  const viewer = page.locator("div[id^='3dmolviewer_']").first();
  await viewer.scrollIntoViewIfNeeded();
  const canvasOk = await page.waitForFunction(() => {
    const div = document.querySelector("div[id^='3dmolviewer_']");
    const c = div && div.querySelector("canvas");
    return !!(c && c.width > 50 && c.height > 50);
  }, null, { timeout: 60000 }).then(() => true, () => false);
  check(canvasOk, "3Dmol.js canvas rendered in the orbital view");
  const fallbackGone = await page.evaluate(() => document.querySelectorAll("[id^='qptfallback_']").length === 0);
  check(fallbackGone, "static fallback image removed once 3Dmol.js loaded");
  // the surfaces were drawn: the viewer shows red (-) and blue (+) lobes
  await page.waitForTimeout(1000);
  const viewerPng = await viewer.screenshot({ path: path.join(artifacts, "02_orbital_view.png") });
  const img = UPNG.decode(viewerPng);
  const rgba = new Uint8Array(UPNG.toRGBA8(img)[0]);
  let red = 0, blue = 0;
  for (let i = 0; i < rgba.length; i += 4) {
    const [r, g, b] = [rgba[i], rgba[i + 1], rgba[i + 2]];
    if (r - b > 60 && r - g > 60) red++;
    if (b - r > 60 && b - g > 20) blue++;
  }
  const n = rgba.length / 4;
  check(red > 0.002 * n && blue > 0.002 * n,
        `orbital isosurfaces drawn (red ${(100 * red / n).toFixed(2)} %, blue ${(100 * blue / n).toFixed(2)} % of the pixels)`);

  // ---------------------------------------------------------------- dashboard
  const stepButton = page.locator("button.jupyter-button", { hasText: /^\s*Step/ }).first();
  const startButton = page.locator("button.jupyter-button", { hasText: /^\s*Start/ }).first();
  const pauseButton = page.locator("button.jupyter-button", { hasText: /^\s*Pause/ }).first();
  const widgetsOk = (await stepButton.count()) > 0 && (await startButton.count()) > 0 && (await pauseButton.count()) > 0;
  check(widgetsOk, "dashboard buttons Start / Pause / Step rendered");
  // the curve image: the first <img> of the dashboard box after the buttons
  const dash = page.locator(".widget-vbox", { has: stepButton }).last();
  await dash.scrollIntoViewIfNeeded();
  const curveSrc = async () => dash.locator("img").first().getAttribute("src");
  const imgCount = await dash.locator("img").count();
  check(imgCount > 0, `dashboard curve image rendered (${imgCount} images)`);
  await dash.screenshot({ path: path.join(artifacts, "03_dashboard_before_step.png") });
  const before = await curveSrc();
  const statsBefore = await dash.locator(".widget-html").nth(1).innerText().catch(() => "");
  await stepButton.click();
  log("pressed Step");
  const changed = await page.waitForFunction(async ([sel, old]) => {
    const boxes = Array.from(document.querySelectorAll(".widget-vbox")).filter((b) =>
      Array.from(b.querySelectorAll("button")).some((x) => /^\s*Step/.test(x.innerText)));
    const box = boxes[boxes.length - 1];
    const img = box && box.querySelector("img");
    return img && img.getAttribute("src") !== old;
  }, [null, before], { timeout: 180000, polling: 500 }).then(() => true, () => false);
  check(changed, "pressing Step redrew the training curve");
  await page.waitForTimeout(1500);
  const statsAfter = await dash.locator(".widget-html").nth(1).innerText().catch(() => "");
  log(`stats before: ${statsBefore.replace(/\s+/g, " ").slice(0, 120)}`);
  log(`stats after : ${statsAfter.replace(/\s+/g, " ").slice(0, 120)}`);
  check(statsBefore !== statsAfter, "dashboard statistics updated after Step");
  await dash.screenshot({ path: path.join(artifacts, "04_dashboard_after_step.png") });
  await shot("05_final.png");
} catch (e) {
  failures.push(String(e && e.stack || e));
  log("ERROR", String(e && e.stack || e));
  try { await shot("error.png"); } catch (e2) { /* ignore */ }
} finally {
  fs.writeFileSync(path.join(artifacts, "browser_console.log"), consoleLog.join("\n") + "\n");
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`${failures.length} browser check(s) failed:\n - ` + failures.join("\n - "));
  process.exit(1);
}
console.log("browser test passed");

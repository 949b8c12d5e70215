// Typeset TeX to SVG at build time with MathJax 3 in Node.js (called by _ext/normbook_site.py).
//
//   node mathjax_svg.js MATHJAX_DIR < {"pages": [[{"tex": "...", "display": true}, ...], ...]}
//     > {"pages": [{"formulas": ["<mjx-container ...>", ...], "defs": "<svg ...>", "errors": [...]}, ...]}
//
// MATHJAX_DIR is the mathjax-full 3.2.2 release (its CommonJS modules under js/), as the pinned PyPI package
// django-static-mathjax installs it. Each page is typeset in one MathJax document with a global font cache:
// every glyph's path is written once per page (in "defs", a hidden <svg> to put at the top of the body) and each
// formula refers to it. Each formula carries its MathML (assistive-mml) for screen readers; the SVG is hidden
// from them. The pages then need no MathJax script: only the CSS (normbook.css) for the containers.
"use strict";

const path = require("path");
const dir = path.resolve(process.argv[2]);
const js = (p) => require(path.join(dir, "js", p));

const { mathjax } = js("mathjax.js");
const { TeX } = js("input/tex.js");
const { SVG } = js("output/svg.js");
const { liteAdaptor } = js("adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = js("handlers/html.js");
const { AssistiveMmlHandler } = js("a11y/assistive-mml.js");

// The TeX packages the browser's tex-mml-chtml.js offers (loaded or autoloaded), but mhchem (an npm dependency)
// and noundefined (an unknown macro is an error here, reported as a build warning, not red text on the page).
const PACKAGES = ["base", "ams", "newcommand", "boldsymbol", "configmacros", "mathtools",
  "cancel", "color", "cases", "centernot", "braket", "bbox", "upgreek", "unicode", "gensymb", "textcomp",
  "verb", "html", "enclose", "extpfeil"];
const PACKAGE_FILES = {
  base: "base/BaseConfiguration.js", ams: "ams/AmsConfiguration.js", newcommand: "newcommand/NewcommandConfiguration.js",
  noundefined: "noundefined/NoUndefinedConfiguration.js", boldsymbol: "boldsymbol/BoldsymbolConfiguration.js",
  configmacros: "configmacros/ConfigMacrosConfiguration.js", mathtools: "mathtools/MathtoolsConfiguration.js",
  cancel: "cancel/CancelConfiguration.js", color: "color/ColorConfiguration.js", cases: "cases/CasesConfiguration.js",
  centernot: "centernot/CenternotConfiguration.js", braket: "braket/BraketConfiguration.js",
  bbox: "bbox/BboxConfiguration.js", upgreek: "upgreek/UpgreekConfiguration.js",
  unicode: "unicode/UnicodeConfiguration.js", gensymb: "gensymb/GensymbConfiguration.js",
  textcomp: "textcomp/TextcompConfiguration.js", verb: "verb/VerbConfiguration.js",
  html: "html/HtmlConfiguration.js", enclose: "enclose/EncloseConfiguration.js",
  extpfeil: "extpfeil/ExtpfeilConfiguration.js",
};
for (const name of PACKAGES) js(path.join("input/tex", PACKAGE_FILES[name]));

const adaptor = liteAdaptor();
AssistiveMmlHandler(RegisterHTMLHandler(adaptor));

function typesetPage(formulas) {
  const tex = new TeX({ packages: PACKAGES, formatError: (jax, err) => jax.formatError(err) });
  const svg = new SVG({ fontCache: "global" });
  const html = mathjax.document("", { InputJax: tex, OutputJax: svg });
  const errors = [];
  const out = formulas.map(({ tex: source, display }) => {
    const node = html.convert(source, { display, em: 16, ex: 8, containerWidth: 80 * 16 });
    const merror = adaptor.tags(node, "mjx-merror").concat(adaptor.tags(node, "merror"));
    if (merror.length) errors.push({ tex: source, error: adaptor.getAttribute(merror[0], "data-mjx-error") || "" });
    return adaptor.outerHTML(node);
  });
  const cache = svg.fontCache.getCache();
  const defs = adaptor.outerHTML(cache);
  return { formulas: out, defs, errors };
}

function styles() {
  const html = mathjax.document("", { InputJax: new TeX({ packages: ["base"] }), OutputJax: new SVG({ fontCache: "global" }) });
  html.convert("x", { display: true });
  return adaptor.textContent(html.outputJax.styleSheet(html));
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const request = JSON.parse(input);
  const result = { pages: request.pages.map(typesetPage) };
  if (request.styles) result.styles = styles();
  process.stdout.write(JSON.stringify(result));
});

// Loaded before the widget manager (@jupyter-widgets/html-manager) on pages with widgets.
//
// 1. The widget manager typesets labels with MathJax 2's call
//    MathJax.Hub.Queue(["Typeset", MathJax.Hub, node]); the book loads MathJax 3,
//    which has no Hub. We map that one call onto MathJax 3's typesetPromise.
//    MathJax (a deferred script) has run by DOMContentLoaded; widgets render at load.
// 2. The figures a widget's output shows carry no alt text; we give each one a
//    description that points to the static figure beside the widget.
const WIDGET_FIGURE_ALT =
  "Figure drawn by the interactive explorer at its saved settings; " +
  "the static figure beside it makes the same point.";

document.addEventListener("DOMContentLoaded", () => {
  const mathjax = window.MathJax;
  if (mathjax && !mathjax.Hub && mathjax.startup) {
    mathjax.Hub = {
      Queue(...jobs) {
        for (const [command, , node] of jobs) {
          if (command === "Typeset" && node) {
            mathjax.startup.promise
              .then(() => mathjax.typesetPromise([node]))
              .catch((error) => console.warn("MathJax could not typeset a widget label:", error));
          }
        }
      },
    };
  }

  const describe = (root) => {
    root.querySelectorAll(".widget-output img:not([alt]), .jp-OutputArea img:not([alt])")
      .forEach((img) => img.setAttribute("alt", WIDGET_FIGURE_ALT));
  };
  new MutationObserver(() => describe(document.body))
    .observe(document.body, { childList: true, subtree: true });
});

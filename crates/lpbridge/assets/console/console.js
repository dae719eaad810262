// lpbridge console: the little behaviour htmx does not give (no inline scripts: the CSP forbids
// them). Every page works without this file; it only adds comfort.
(function () {
  "use strict";

  // A <dialog> that receives content from htmx opens as a modal (focus moves into it, Esc
  // closes it, the page behind is inert).
  document.addEventListener("htmx:afterSwap", function (e) {
    var t = e.detail.target;
    if (t && t.tagName === "DIALOG" && !t.open && t.innerHTML.trim() !== "") {
      t.showModal();
      var first = t.querySelector("[autofocus], input, select, textarea, button");
      if (first) first.focus();
    }
  });

  document.addEventListener("click", function (e) {
    var el = e.target.closest("[data-close-dialog]");
    if (el) {
      var d = el.closest("dialog");
      if (d) { e.preventDefault(); d.close(); }
    }
    var all = e.target.closest("[data-select-all]");
    if (all && all.tagName === "INPUT") {
      var scope = all.closest("form") || document;
      scope.querySelectorAll('input[type=checkbox][name="' + all.dataset.selectAll + '"]')
        .forEach(function (c) { if (!c.disabled) c.checked = all.checked; });
    }
  });

  // Forms and buttons that change something important ask first.
  document.addEventListener("submit", function (e) {
    var f = e.target;
    var btn = e.submitter;
    var msg = (btn && btn.dataset.confirm) || f.dataset.confirm;
    if (msg && !window.confirm(msg)) e.preventDefault();
  }, true);

  // A dialog closed with Esc or its Cancel button is emptied, so a stale form never reopens.
  document.addEventListener("close", function (e) {
    if (e.target.tagName === "DIALOG" && e.target.dataset.emptyOnClose !== undefined) {
      e.target.innerHTML = "";
    }
  }, true);

  // Every htmx request of the page carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (e) {
    var m = document.querySelector('meta[name="csrf-token"]');
    if (m) e.detail.headers["X-CSRF-Token"] = m.content;
  });
})();

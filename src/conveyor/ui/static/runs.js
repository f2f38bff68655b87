// Runs table: put the caret where the filter error is; count selected runs for "Compare".
"use strict";
(function () {
  const filter = document.getElementById("filter");
  if (filter && filter.dataset.errorPosition !== undefined) {
    const at = Number(filter.dataset.errorPosition);
    filter.focus();
    filter.setSelectionRange(at, Math.min(at + 1, filter.value.length));
  }
  const form = document.getElementById("compare-form");
  const button = document.getElementById("compare-button");
  if (!form || !button) return;
  function update() {
    const n = form.querySelectorAll('input[name="run"]:checked').length;
    button.disabled = n < 2;
    button.textContent = n < 2 ? "Compare selected (pick 2 or more)" : "Compare " + n + " runs";
  }
  form.addEventListener("change", update);
  update();
})();

// Small progressive enhancements; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The disclosure report: a print button (the page has a print stylesheet).
  document.querySelectorAll("button.print").forEach(function (b) {
    b.hidden = false;
    b.addEventListener("click", function () { window.print(); });
  });
  // Ask before publishing a draft.
  document.querySelectorAll("form[action$='/publish']").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm("Publish this draft as a change for review? The running policy is not changed.")) {
        e.preventDefault();
      }
    });
  });
  // Jump to the line a problem names when the editor opens on #L<n>.
  var m = /^#L(\d+)$/.exec(window.location.hash);
  var text = document.getElementById("text");
  if (m && text) {
    var n = parseInt(m[1], 10), lines = text.value.split("\n"), pos = 0;
    for (var i = 0; i < n - 1 && i < lines.length; i++) { pos += lines[i].length + 1; }
    text.focus();
    text.setSelectionRange(pos, pos + (lines[n - 1] || "").length);
  }
});

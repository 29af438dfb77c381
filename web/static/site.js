// Progressive enhancement only: every page works without this script.
// - A form shown with errors opens with focus on its error summary, so a
//   screen reader starts with the list of problems (without the script the
//   summary is still the first thing in main).
// - A link in the error summary moves focus to the field it names and
//   scrolls its label into view; browsers only scroll to the target.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (!summary) {
    return;
  }
  summary.focus();
  summary.addEventListener("click", function (e) {
    var a = e.target.closest("a[href^='#']");
    var field = a && document.getElementById(a.getAttribute("href").slice(1));
    if (!field) {
      return;
    }
    e.preventDefault();
    var group = field.closest("fieldset");
    var label = group ? group.querySelector("legend") : document.querySelector("label[for='" + field.id + "']");
    (label || field).scrollIntoView();
    field.focus({ preventScroll: true });
  });
})();

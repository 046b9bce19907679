// Sends each form once: after a press, the form's buttons are disabled
// until the answer arrives, so a double click cannot queue a command twice
// (a Mac locked twice would keep the first PIN while the page shows the
// second). Pages work without it; the server checks every form anyway.
"use strict";

(function () {
  document.querySelectorAll("form[method=post]:not([data-passkey])").forEach(function (form) {
    form.addEventListener("submit", function () {
      // After this event, so the pressed button's name and value are sent.
      setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.disabled = true;
        });
      }, 0);
    });
  });
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("button[type=submit]").forEach(function (b) {
      b.disabled = false;
    });
  });
})();

// Sharing panel: copy buttons, the tool opened at #share, and the custom expiry fields shown only when "Custom" is chosen.
(function () {
  "use strict";

  function copyFrom(button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    };
    field.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        document.execCommand("copy");
        done();
      });
    } else {
      // Plain-HTTP sites (a laptop install) have no Clipboard API: fall back to the selection.
      document.execCommand("copy");
      done();
    }
  }

  function syncCustomExpiry(form) {
    var custom = form.querySelector('input[name$="expiry"][value="custom"]');
    var fields = form.querySelector("[data-custom-expiry]");
    if (!custom || !fields) return;
    fields.hidden = !custom.checked;
  }

  document.addEventListener("click", function (event) {
    // Already at #share, the Share… button changes no hash: open the tool all the same.
    if (event.target.closest('a[href="#share"]')) window.setTimeout(openSharing, 0);
    var button = event.target.closest("[data-copy]");
    if (button) {
      event.preventDefault();
      copyFrom(button);
    }
  });

  // Opened at #share (the Share… button, links from other pages): show the first sharing tool.
  function openSharing() {
    if (window.location.hash !== "#share") return;
    var panel = document.getElementById("share");
    if (!panel || panel.querySelector("details.share-tool[open]")) return;
    var tool = panel.querySelector("details[data-share-default]");
    if (tool) tool.open = true;
  }
  openSharing();
  window.addEventListener("hashchange", openSharing);

  document.querySelectorAll("form[data-expiry-form]").forEach(function (form) {
    syncCustomExpiry(form);
    form.addEventListener("change", function () { syncCustomExpiry(form); });
  });
})();

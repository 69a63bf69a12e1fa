// Folder page: "select every row" and downloading several selected files at once. Without this
// script the page still works: rows are ticked one by one and Download lists the files' links.
(function () {
  "use strict";

  var form = document.getElementById("selection-form");
  if (!form) return;
  var all = form.querySelector("[data-select-all]");
  var boxes = function () { return form.querySelectorAll('input[type="checkbox"][name="keys"]'); };

  function syncAll() {
    var list = boxes(), checked = 0;
    list.forEach(function (box) { if (box.checked) checked += 1; });
    all.checked = list.length > 0 && checked === list.length;
    all.indeterminate = checked > 0 && checked < list.length;
  }

  if (all) {
    all.hidden = false;
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
    });
    form.addEventListener("change", function (event) {
      if (event.target !== all) syncAll();
    });
    syncAll();
  }

  // Several files: each goes through its own audited download link, one after the other (the
  // browser may ask once whether the site may download several files). A folder in the
  // selection is left to the server's page, which says that folders cannot be downloaded yet.
  var download = form.querySelector("[data-download-selection]");
  if (download) {
    download.addEventListener("click", function (event) {
      var urls = [], folders = 0;
      boxes().forEach(function (box) {
        if (!box.checked) return;
        if (box.hasAttribute("data-download")) urls.push(box.getAttribute("data-download"));
        else folders += 1;
      });
      if (urls.length < 2 || folders) return;
      event.preventDefault();
      urls.forEach(function (url, index) {
        window.setTimeout(function () {
          var link = document.createElement("a");
          link.href = url;
          link.download = "";
          link.hidden = true;
          document.body.appendChild(link);
          link.click();
          link.remove();
        }, index * 400);
      });
    });
  }
})();

// Folder page: "select every row". Without this script the page still works: rows are ticked
// one by one (Download then answers one ZIP for several files or a folder, from the server).
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
})();

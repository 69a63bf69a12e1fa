// The folder job page: asks the job's status every second and shows it, until the job is done.
(function () {
  "use strict";
  var page = document.querySelector("[data-testid=folder-job]");
  if (!page || !window.fetch) return;
  var url = page.getAttribute("data-status-url");
  var progress = page.querySelector("[data-testid=job-progress]");
  var summary = page.querySelector("[data-testid=job-summary]");
  var failures = page.querySelector("[data-testid=job-failures]");
  var resume = page.querySelector("[data-testid=job-resume-form]");
  var EVERY_MS = 1000;

  function tone(status) {
    if (status.state === "done") return status.failed ? "error" : "success";
    if (status.state === "stopped" || status.state === "interrupted") return "error";
    return "info";
  }

  function showFailures(list) {
    var items = failures.querySelector("ul");
    items.textContent = "";
    list.forEach(function (failure) {
      var item = document.createElement("li");
      var key = document.createElement("code");
      key.textContent = failure.key;
      item.appendChild(key);
      item.appendChild(document.createTextNode(" — " + failure.message));
      items.appendChild(item);
    });
    failures.hidden = list.length === 0;
  }

  function show(status) {
    progress.max = Math.max(status.planned, 1);
    progress.value = status.done + status.failed;
    summary.textContent = status.summary;
    summary.className = "message message-" + tone(status);
    page.setAttribute("data-state", status.state);
    showFailures(status.failures);
    resume.hidden = !status.resumable;
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (status) {
        show(status);
        if (!status.finished) window.setTimeout(poll, EVERY_MS);
      })
      .catch(function () {
        window.setTimeout(poll, EVERY_MS * 5); // the portal restarting: try again later
      });
  }

  if (page.getAttribute("data-state") !== "done") window.setTimeout(poll, EVERY_MS);
})();

// mxtrace serve: while a report page is still loading, fill in the route
// and each area as the check finishes it, from the page's event stream
// (server-rendered HTML fragments). Without this script the page shows
// the finished report all the same.
(function () {
  "use strict";
  var progress = document.getElementById("progress");
  if (!progress || !window.EventSource) {
    return;
  }
  var routeBox = document.getElementById("live-route");
  var areaBox = document.getElementById("live-areas");
  var status = document.getElementById("live-status");
  var source = new EventSource(progress.getAttribute("data-events"));

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }
  function finish() {
    source.close();
  }
  source.addEventListener("route", function (e) {
    routeBox.replaceChildren(fragment(e.data));
  });
  source.addEventListener("area", function (e) {
    var node = fragment(e.data).firstElementChild;
    if (!node) {
      return;
    }
    // Areas finish in any order: keep the report's.
    var order = Number(node.getAttribute("data-order"));
    var next = Array.prototype.find.call(areaBox.children, function (c) {
      return Number(c.getAttribute("data-order")) > order;
    });
    areaBox.insertBefore(node, next || null);
    // A short line for screen readers, not every area read aloud.
    var n = areaBox.children.length;
    status.textContent = n + (n === 1 ? " area" : " areas") + " checked so far.";
  });
  source.addEventListener("done", finish);
  source.addEventListener("error", finish);

  // The finished report follows in the same document: the live preview
  // gives way to it.
  document.addEventListener("DOMContentLoaded", function () {
    finish();
    if (document.getElementById("report")) {
      progress.remove();
    }
  });
})();

// Souk admin console: live stock and hot SKUs over server-sent events. The pages are
// complete without this script; it only keeps the numbers current.
(function () {
  "use strict";

  var scope = document.querySelector("[data-live-skus]");
  var status = document.getElementById("live-status");
  if (!scope || !window.EventSource) {
    return;
  }

  function setStatus(text, state) {
    if (!status) {
      return;
    }
    status.textContent = text;
    status.setAttribute("data-state", state);
  }

  function level(stock) {
    if (stock.available <= 0) {
      return "out";
    }
    if (stock.threshold > 0 && stock.available < stock.threshold) {
      return "low";
    }
    return "ok";
  }

  var levelWords = { out: "out of stock", low: "low", ok: "in stock" };

  // The open-reservations table of a SKU page, reloaded at most every two seconds
  // when its SKU changes.
  var reservations = document.getElementById("reservations");
  var reloadTimer = null;
  var lastReload = 0;
  function reloadReservations() {
    if (!reservations || reloadTimer) {
      return;
    }
    var wait = Math.max(0, 2000 - (Date.now() - lastReload));
    reloadTimer = setTimeout(function () {
      reloadTimer = null;
      lastReload = Date.now();
      fetch(reservations.getAttribute("data-fragment"), { credentials: "same-origin" })
        .then(function (response) {
          return response.ok ? response.text() : Promise.reject(response.status);
        })
        .then(function (html) {
          reservations.innerHTML = html;
        })
        .catch(function () {});
    }, wait);
  }

  function applyStock(stock) {
    var holders = document.querySelectorAll("[data-sku]");
    for (var i = 0; i < holders.length; i++) {
      var holder = holders[i];
      if (holder.getAttribute("data-sku") !== stock.sku) {
        continue;
      }
      ["on_hand", "reserved", "available", "threshold", "version"].forEach(function (field) {
        var cell = holder.querySelector('[data-field="' + field + '"]');
        if (cell) {
          cell.textContent = String(stock[field]);
        }
      });
      var current = level(stock);
      var words = holder.querySelector('[data-field="level"]');
      if (words) {
        words.textContent = levelWords[current];
      }
      holder.classList.remove("level-ok", "level-low", "level-out");
      holder.classList.add("level-" + current);
      holder.classList.remove("changed");
      void holder.offsetWidth;
      holder.classList.add("changed");
    }
    if (reservations && scope.getAttribute("data-live-skus") === stock.sku) {
      reloadReservations();
    }
  }

  function renderHot(list) {
    var board = document.getElementById("hot-skus");
    var empty = document.getElementById("hot-empty");
    if (!board) {
      return;
    }
    while (board.firstChild) {
      board.removeChild(board.firstChild);
    }
    list.forEach(function (hot) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = "/admin/stock/" + encodeURIComponent(hot.sku);
      link.textContent = hot.sku;
      var rate = document.createElement("strong");
      rate.textContent = hot.per_second + "/s";
      var detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = hot.last_minute + " in the last minute · " + hot.available + " available";
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(rate);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(detail);
      board.appendChild(item);
    });
    if (empty) {
      empty.hidden = list.length > 0;
    }
  }

  var skus = scope.getAttribute("data-live-skus") || "";
  var source = new EventSource("/admin/live?skus=" + encodeURIComponent(skus));
  setStatus("connecting…", "off");
  source.onopen = function () {
    setStatus("live", "on");
  };
  source.onerror = function () {
    if (source.readyState !== EventSource.CLOSED) {
      setStatus("reconnecting…", "off");
    }
  };
  source.addEventListener("stock", function (event) {
    JSON.parse(event.data).forEach(applyStock);
  });
  source.addEventListener("hot", function (event) {
    renderHot(JSON.parse(event.data));
  });
  source.addEventListener("resync", function () {
    window.location.reload();
  });
  source.addEventListener("signed-out", function () {
    source.close();
    setStatus("signed out: reload to sign in again", "off");
  });
  source.addEventListener("unavailable", function () {
    source.close();
    setStatus("not live on this node", "off");
  });
})();

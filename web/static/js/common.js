/* Shared by the shopper pages: client id, API calls, money, friendly errors. */
(function () {
  "use strict";
  var SV = (window.SV = {});
  var memory = {};

  SV.store = {
    get: function (key) {
      try { return JSON.parse(localStorage.getItem(key)); } catch (e) { return memory[key] || null; }
    },
    set: function (key, value) {
      try { localStorage.setItem(key, JSON.stringify(value)); } catch (e) { memory[key] = value; }
    },
    remove: function (key) {
      try { localStorage.removeItem(key); } catch (e) { delete memory[key]; }
    },
  };

  function randomId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  /* The random id this browser keeps; the server ties a lock to it. */
  SV.clientId = function () {
    var id = SV.store.get("sv_client_id");
    if (typeof id !== "string" || id.length < 8) {
      id = randomId();
      SV.store.set("sv_client_id", id);
    }
    return id;
  };

  SV.money = function (amount, currency) {
    return new Intl.NumberFormat("en-IN", { style: "currency", currency: currency || "INR" }).format(amount / 100);
  };

  /* Server seconds minus browser seconds, from the Date header of the last answer. */
  SV.skew = 0;
  SV.now = function () { return Math.floor(Date.now() / 1000) + SV.skew; };

  /* fetch JSON; resolves {ok, status, data, retryAfter}; never throws. */
  SV.api = async function (method, path, body) {
    var init = { method: method, headers: { Accept: "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    var res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, data: { error: { code: "network" } }, retryAfter: 0 };
    }
    var date = Date.parse(res.headers.get("Date") || "");
    if (!isNaN(date)) {
      var skew = Math.round((date - Date.now()) / 1000);
      SV.skew = Math.abs(skew) > 2 ? skew : 0; /* the header has whole seconds only */
    }
    var data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { ok: res.ok, status: res.status, data: data, retryAfter: parseInt(res.headers.get("Retry-After") || "0", 10) || 0 };
  };

  SV.errorCode = function (res) {
    return (res.data && res.data.error && res.data.error.code) || "http_" + res.status;
  };

  SV.duration = function (seconds) {
    seconds = Math.max(0, Math.ceil(seconds));
    if (seconds < 60) return seconds + (seconds === 1 ? " second" : " seconds");
    var minutes = Math.ceil(seconds / 60);
    return minutes + (minutes === 1 ? " minute" : " minutes");
  };

  var MESSAGES = {
    invalid_code: "That code doesn't match. Check the 6 digits on the machine's display and try again.",
    machine_busy: "Someone else is using this machine right now. Please try again in a few minutes.",
    machine_offline: "This machine is offline right now, so it can't sell. Please try again later.",
    machine_out_of_service: "This machine is out of service right now.",
    session_expired: "Your reservation ran out. Enter the new code from the machine's display to start again.",
    not_lock_owner: "This reservation isn't yours any more. Enter the code from the display again.",
    insufficient_stock: "There aren't that many left in the machine. Please choose fewer.",
    vend_in_progress: "Your items are being dispensed right now.",
    machine_not_found: "We can't find this machine.",
    order_not_found: "We can't find this order.",
    invalid_signature: "We couldn't confirm this payment. If money left your account, it will be refunded.",
    payment_required: "The payment didn't go through, so nothing was charged.",
    gateway_error: "The payment service isn't answering. Nothing was charged; please try again.",
    network: "We couldn't reach SmartVend. Check your internet connection and try again.",
  };

  /* A sentence a shopper understands for any error answer. */
  SV.explain = function (res) {
    var code = SV.errorCode(res);
    if (code === "rate_limited") {
      return "Too many wrong codes. Please wait " + SV.duration(res.retryAfter || 60) + " and try again.";
    }
    if (MESSAGES[code]) return MESSAGES[code];
    if (res.status >= 500) return "Something went wrong on our side. Please try again.";
    var message = res.data && res.data.error && res.data.error.message;
    return message ? message.charAt(0).toUpperCase() + message.slice(1) + "." : "Something went wrong. Please try again.";
  };

  SV.say = function (el, text) { if (el && el.textContent !== text) el.textContent = text; };

  /* After "too many wrong codes": the wait counts down where the shopper reads it, the
     button comes back when it is over. Returns a function that ends it early. */
  SV.waitOut = function (el, button, seconds) {
    var end = Date.now() + Math.max(1, seconds) * 1000;
    button.disabled = true;
    var timer = setInterval(tick, 1000);
    function tick() {
      var left = Math.ceil((end - Date.now()) / 1000);
      if (left > 0) {
        SV.say(el, "Too many wrong codes. Please wait " + SV.duration(left) + " and try again.");
        return;
      }
      clearInterval(timer);
      button.disabled = false;
      SV.say(el, "You can try a code again now.");
    }
    tick();
    return function () { clearInterval(timer); button.disabled = false; };
  };

  /* A code as typed or pasted: "754 125", "754-125", "754.125" all read 754125. Other
     scripts' digits (e.g. ٧٥٤) count as digits too. */
  SV.cleanCode = function (raw) {
    return String(raw || "")
      .replace(/[\u0660-\u0669]/g, function (d) { return String(d.charCodeAt(0) - 0x0660); })
      .replace(/[\u0966-\u096F]/g, function (d) { return String(d.charCodeAt(0) - 0x0966); })
      .replace(/[\uFF10-\uFF19]/g, function (d) { return String(d.charCodeAt(0) - 0xFF10); })
      .replace(/[\s\-\u2010-\u2015._,·:\/]+/g, "");
  };

  /* Keep a code field to its digits as the shopper types or pastes. */
  SV.codeField = function (input) {
    input.addEventListener("input", function () {
      var clean = SV.cleanCode(input.value);
      if (/^[0-9]*$/.test(clean) && clean !== input.value) input.value = clean;
    });
  };

  SV.lockKey = function (machineId) { return "sv_lock_" + machineId; };

  /* "4:07": minutes and seconds left. */
  SV.clock = function (seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var s = seconds % 60;
    return Math.floor(seconds / 60) + ":" + (s < 10 ? "0" : "") + s;
  };

  /* Checkout closes this long before the reservation could end, so a payment made in
     its last second still reaches the server while the machine is reserved. */
  SV.PAY_MARGIN_S = 10;
  SV.HOLD_EVERY_S = 20;

  /* Seconds left to pay when the reservation can be kept until hold_until. */
  SV.payWindow = function (holdUntil) { return holdUntil - SV.PAY_MARGIN_S - SV.now(); };

  /* While checkout is open: keep the reservation (POST .../extend now and every
     HOLD_EVERY_S). onHold gets each answer ({expires_at, hold_until}); onLost the error
     code once the reservation can't be kept. Returns {ready, stop}: ready resolves to
     the first answer (SV.api's result). */
  var LOST = ["session_expired", "not_lock_owner", "checkout_not_open"];
  SV.keepReservation = function (machineId, sessionId, onHold, onLost) {
    var stopped = false, timer = null, first = null;
    var ready = new Promise(function (resolve) { first = resolve; });
    var path = "/api/machine/" + encodeURIComponent(machineId) + "/extend";
    async function ask() {
      var res = await SV.api("POST", path, { client_id: SV.clientId(), session_id: sessionId });
      first(res);
      if (stopped) return;
      if (res.ok) {
        onHold(res.data);
        timer = setTimeout(ask, SV.HOLD_EVERY_S * 1000);
      } else if (LOST.indexOf(SV.errorCode(res)) >= 0) {
        onLost(SV.errorCode(res));
      } else {
        timer = setTimeout(ask, 3000); /* a blip (network, a busy moment): ask again soon */
      }
    }
    /* A phone back from the bank's app: ask at once (a hidden page's timers may sleep). */
    function back() {
      if (document.visibilityState !== "visible" || stopped) return;
      clearTimeout(timer);
      ask();
    }
    document.addEventListener("visibilitychange", back);
    ask();
    return {
      ready: ready,
      stop: function () {
        stopped = true;
        clearTimeout(timer);
        document.removeEventListener("visibilitychange", back);
      },
    };
  };
})();

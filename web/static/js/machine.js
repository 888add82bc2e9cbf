/* The machine page: code -> lock -> quantity -> pay (Razorpay or the test checkout). */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var mid = main.dataset.machine;
  var name = main.dataset.name;
  var currency = main.dataset.currency || "INR";
  var $ = function (id) { return document.getElementById(id); };
  var codeForm = $("code-form"), codeInput = $("code"), codeError = $("code-error"), unlockBtn = $("unlock");
  var buy = $("buy"), qty = $("quantity"), total = $("total"), payBtn = $("pay"), cancelBtn = $("cancel");
  var buyError = $("buy-error"), notice = $("notice"), countdown = $("countdown");
  var lock = null, timer = null, warned = false, price = parseInt(main.dataset.price, 10);
  var stockNow = parseInt(main.dataset.stock, 10) || 0, waiting = null;
  var FOLLOW_EVERY_MS = 5000; /* how often the page re-reads the machine's status while shown */
  var follower = null, keeper = null, payUntil = null, status = window.SVStatus;

  function showStatus(s) {
    stockNow = s.stock;
    price = s.price.amount;
    currency = s.price.currency;
    if (window.SVCart) window.SVCart.update(s.slots);
    else SV.say($("machine-price"), SV.money(price, currency) + " each");
    status.show(s, !!lock);
  }

  async function refresh() {
    var res = await SV.api("GET", "/api/machine/" + encodeURIComponent(mid) + "/public-status?client_id=" + encodeURIComponent(SV.clientId()));
    if (!res.ok) return null;
    showStatus(res.data);
    return res.data;
  }

  /* Why the quantity can't go higher: the machine's stock or the per-purchase limit. */
  function limitText(max) {
    if (stockNow <= max) return max === 1 ? "Only 1 left in this machine." : "Only " + max + " left in this machine.";
    return "At most " + max + " per purchase.";
  }

  function setQuantity(n, asked) {
    var max = lock ? lock.max_quantity : 1;
    var wanted = parseInt(n, 10);
    n = Math.min(Math.max(wanted || 1, 1), max);
    var note = "";
    if (asked && wanted > max) note = limitText(max) + " We set it to " + max + ".";
    else if (asked && !(wanted >= 1)) note = "Choose at least 1.";
    SV.say($("quantity-note"), note);
    qty.setAttribute("aria-invalid", note ? "true" : "false");
    qty.value = String(n);
    $("fewer").disabled = n <= 1;
    $("more").disabled = n >= max;
    SV.say($("quantity-max"), n >= max && !note ? limitText(max) : "");
    SV.say(total, SV.money(price * n, currency));
    return n;
  }

  function tick() {
    if (!lock) return;
    var left = payUntil !== null ? SV.payWindow(payUntil) : lock.expires_at - SV.now();
    if (left <= 0 && (payUntil === null || lock.expires_at <= SV.now())) {
      endLock("");
      awaitNewCode();
      return;
    }
    countdown.textContent = SV.clock(left);
    if (left <= 60 && !warned) {
      warned = true;
      SV.say(notice, "Less than a minute left to pay.");
    }
  }

  function showBuy(newLock, focus) {
    lock = newLock;
    price = lock.price.amount;
    currency = lock.price.currency;
    SV.store.set(SV.lockKey(mid), lock);
    qty.max = String(lock.max_quantity);
    if (window.SVCart) {
      window.SVCart.setLimit(lock.max_quantity);
      if (lock.cart) window.SVCart.restore(lock.cart);
    }
    setQuantity(lock.quantity || qty.value);
    status.settle(null);
    codeForm.hidden = true;
    buy.hidden = false;
    payBtn.disabled = false;
    cancelBtn.disabled = false;
    warned = false;
    clearInterval(timer);
    timer = setInterval(tick, 1000);
    tick();
    if (focus) $("buy-title").focus();
  }

  /* After a reservation ends the machine shows a new code once the server has made one:
     say so only when it is there. */
  function awaitNewCode() {
    clearTimeout(waiting);
    status.quiet(true);
    SV.say(notice, "Your reservation ran out. The machine's display will show a new code in a moment…");
    async function check() {
      var s = await refresh();
      if (lock) { status.quiet(false); return; }
      if (s && s.code_on_display) {
        status.quiet(false);
        SV.say(notice, "Your reservation ran out. The machine's display now shows a new code: enter it to start again.");
        status.settle(s);
        return;
      }
      if (s && s.locked && !s.locked_by_you) { status.quiet(false); SV.say(notice, status.noticeFor(s)); status.settle(s); return; }
      waiting = setTimeout(check, 1000);
    }
    check();
  }

  function endLock(message) {
    lock = null;
    stopKeeping();
    clearInterval(timer);
    SV.store.remove(SV.lockKey(mid));
    buy.hidden = true;
    codeForm.hidden = false;
    codeInput.value = "";
    SV.say(buyError, "");
    SV.say(notice, message || "");
    status.sending(false);
    codeInput.focus();
  }

  codeForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    var code = SV.cleanCode(codeInput.value);
    if (!/^[0-9]{6}$/.test(code)) {
      codeInput.setAttribute("aria-invalid", "true");
      SV.say(codeError, "Enter the 6 digits shown on the machine's display.");
      codeInput.focus();
      return;
    }
    status.sending(true);
    SV.say(codeError, "");
    var res = await SV.api("POST", "/api/lock-by-code", { code: code, client_id: SV.clientId(), machine_id: mid });
    status.sending(false);
    if (res.ok) {
      codeInput.removeAttribute("aria-invalid");
      SV.say(notice, "");
      showBuy(res.data, true);
      refresh();
      return;
    }
    var errorCode = SV.errorCode(res);
    if (errorCode === "invalid_code") codeInput.setAttribute("aria-invalid", "true");
    if (errorCode === "rate_limited") {
      SV.waitOut(codeError, status.rateGate, res.retryAfter || 60);
    } else {
      SV.say(codeError, SV.explain(res));
    }
    if (errorCode !== "invalid_code") refresh();
    codeInput.select();
  });

  $("fewer").addEventListener("click", function () { setQuantity(parseInt(qty.value, 10) - 1); });
  $("more").addEventListener("click", function () { setQuantity(parseInt(qty.value, 10) + 1, true); });
  qty.addEventListener("change", function () { setQuantity(qty.value, true); });

  function lockLost(code) {
    return code === "session_expired" || code === "not_lock_owner";
  }

  cancelBtn.addEventListener("click", async function () {
    if (!lock) return;
    cancelBtn.disabled = true;
    var res = await SV.api("POST", "/api/machine/" + encodeURIComponent(mid) + "/unlock", { client_id: SV.clientId(), session_id: lock.session_id });
    if (res.ok || lockLost(SV.errorCode(res))) {
      endLock("Cancelled. The machine is free for the next person.");
      refresh();
      return;
    }
    cancelBtn.disabled = false;
    SV.say(buyError, SV.explain(res));
  });

  /* While checkout is open the reservation is kept; the countdown shows the time to pay. */
  function keepForCheckout() {
    stopKeeping();
    var session = lock.session_id;
    keeper = SV.keepReservation(mid, session, function (hold) {
      if (!lock) return;
      lock.expires_at = hold.expires_at;
      payUntil = hold.hold_until;
      SV.store.set(SV.lockKey(mid), lock);
      tick();
    }, function () { stopKeeping(); });
    return keeper.ready;
  }

  function stopKeeping() {
    if (keeper) keeper.stop();
    keeper = null;
    payUntil = null;
  }

  async function verify(proof) {
    stopKeeping();
    SV.say(notice, "Payment done. Confirming it…");
    var res = await SV.api("POST", "/verify-payment", proof);
    if (res.ok) {
      location.href = "/orders/" + encodeURIComponent(res.data.order_id);
      return;
    }
    SV.say(buyError, SV.explain(res));
  }

  async function openRazorpay(order) {
    if (typeof window.Razorpay !== "function") {
      SV.say(buyError, "The payment window didn't load. Check your connection and press Pay again.");
      payBtn.disabled = false;
      return;
    }
    var held = await keepForCheckout();
    var seconds = SV.payWindow(held.ok ? held.data.hold_until : lock.expires_at);
    if (seconds < 1) {
      stopKeeping();
      endLock("");
      awaitNewCode();
      return;
    }
    var rzp = new window.Razorpay({
      key: order.key_id,
      order_id: order.gateway_order_id,
      amount: order.amount,
      currency: order.currency,
      name: "SmartVend",
      description: window.SVCart ? name + " · " + window.SVCart.units() + " items" : name + " × " + qty.value,
      handler: verify,
      timeout: Math.floor(seconds), /* closes with the reservation */
      modal: {
        ondismiss: function () {
          stopKeeping();
          tick();
          payBtn.disabled = false;
          SV.say(notice, "Payment not finished. You can pay while your reservation lasts.");
        },
      },
    });
    rzp.on("payment.failed", function () {
      SV.say(buyError, "The payment failed, so nothing was charged. You can try again.");
    });
    rzp.open();
  }

  payBtn.addEventListener("click", async function () {
    if (!lock) return;
    payBtn.disabled = true;
    SV.say(buyError, "");
    var n = setQuantity(qty.value);
    lock.quantity = n; /* kept after a failed payment */
    if (window.SVCart) lock.cart = window.SVCart.items();
    SV.store.set(SV.lockKey(mid), lock);
    var body = { session_id: lock.session_id, client_id: SV.clientId(), quantity: n };
    if (window.SVCart) {
      /* Several products: the cart's items (each slot once). */
      if (window.SVCart.units() < 1) {
        SV.say(buyError, "Choose at least one product above.");
        payBtn.disabled = false;
        return;
      }
      body = { session_id: lock.session_id, client_id: SV.clientId(), items: window.SVCart.items() };
    }
    var res = await SV.api("POST", "/create-order", body);
    if (!res.ok) {
      var errorCode = SV.errorCode(res);
      if (lockLost(errorCode)) {
        endLock("");
        awaitNewCode();
        return;
      }
      SV.say(buyError, (window.SVCart && window.SVCart.explain(res)) || SV.explain(res));
      payBtn.disabled = false;
      if (errorCode === "insufficient_stock" || errorCode === "slot_unavailable") refresh();
      return;
    }
    var order = res.data;
    SV.store.set("sv_last_order", { order_id: order.order_id, machine_id: mid });
    if (order.gateway === "test") {
      location.href = "/checkout/test/" + encodeURIComponent(order.gateway_order_id);
    } else {
      openRazorpay(order);
    }
  });

  SV.codeField(codeInput);
  codeInput.addEventListener("input", function () {
    codeInput.removeAttribute("aria-invalid");
    SV.say(codeError, "");
  });

  /* Coming back while the machine still works on this shopper's order: point to it. */
  async function resumeOrder() {
    var last = SV.store.get("sv_last_order");
    if (!last || last.machine_id !== mid) return false;
    var res = await SV.api("GET", "/api/orders/" + encodeURIComponent(last.order_id));
    if (!res.ok || ["paid", "dispensing"].indexOf(res.data.status) < 0) return false;
    $("resume-link").href = "/orders/" + encodeURIComponent(last.order_id);
    $("resume").hidden = false;
    codeForm.hidden = true;
    return true;
  }

  async function start() {
    var status = await refresh();
    if (!status) return;
    if (status.locked_by_you && (await resumeOrder())) return;
    var saved = SV.store.get(SV.lockKey(mid));
    if (status.locked_by_you && saved && saved.session_id && status.lock_expires_at) {
      saved.expires_at = status.lock_expires_at;
      showBuy(saved, false);
      return;
    }
    if (saved) SV.store.remove(SV.lockKey(mid));
  }

  /* Follow the machine while the page is shown: online or not, in use, its display. */
  function follow() {
    clearInterval(follower);
    follower = null;
    if (document.visibilityState !== "visible") return;
    follower = setInterval(refresh, FOLLOW_EVERY_MS);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") refresh();
    follow();
  });
  start().then(follow);
})();

/* A machine with several products: the grid, the cart and its total. machine.js asks
   SVCart for the items to order; a tap on a sold-out product is counted (lost demand). */
(function () {
  "use strict";
  var main = document.getElementById("main");
  var mid = main.dataset.machine;
  var currency = main.dataset.currency || "INR";
  var most = parseInt(main.dataset.maxQuantity, 10) || 5;
  var $ = function (id) { return document.getElementById(id); };
  var cards = Array.prototype.slice.call(document.querySelectorAll("#grid .product"));
  var cart = {}; /* slot id -> units */
  var limit = most, listeners = [];

  function card(slot) {
    for (var i = 0; i < cards.length; i++) if (cards[i].dataset.slot === slot) return cards[i];
    return null;
  }
  function units() {
    var n = 0;
    for (var k in cart) n += cart[k];
    return n;
  }
  function total() {
    var sum = 0;
    cards.forEach(function (c) { sum += (cart[c.dataset.slot] || 0) * parseInt(c.dataset.price, 10); });
    return sum;
  }

  function render(note) {
    var lines = $("cart-lines");
    lines.replaceChildren();
    cards.forEach(function (c) {
      var slot = c.dataset.slot, n = cart[slot] || 0, stock = parseInt(c.dataset.stock, 10) || 0;
      if (n > stock) { n = stock; if (n) cart[slot] = n; else delete cart[slot]; }
      c.querySelector(".count").textContent = String(n);
      c.querySelector(".less").disabled = n < 1;
      var more = c.querySelector(".more");
      var full = n >= stock || units() >= limit;
      more.classList.toggle("full", full);
      c.classList.toggle("chosen", n > 0);
      c.classList.toggle("sold-out", stock < 1);
      SV.say(c.querySelector(".left"), stock < 1 ? "Sold out" : stock + " left");
      if (n > 0) {
        var li = document.createElement("li");
        li.dataset.slot = slot;
        li.textContent = slot + " " + c.dataset.name + " × " + n + " · " + SV.money(n * parseInt(c.dataset.price, 10), currency);
        lines.appendChild(li);
      }
    });
    $("cart-empty").hidden = units() > 0;
    SV.say($("cart-total"), SV.money(total(), currency));
    SV.say($("cart-note"), note || "");
    listeners.forEach(function (fn) { fn(); });
  }

  function add(c, step) {
    var slot = c.dataset.slot, stock = parseInt(c.dataset.stock, 10) || 0, n = cart[slot] || 0;
    if (step > 0) {
      if (stock < 1) {
        SV.api("POST", "/api/machine/" + encodeURIComponent(mid) + "/slots/" + encodeURIComponent(slot) + "/sold-out-tap");
        render(c.dataset.name + " is sold out in this machine.");
        return;
      }
      if (n >= stock) { render("Only " + stock + " " + c.dataset.name + " left."); return; }
      if (units() >= limit) { render("At most " + limit + " items per purchase."); return; }
    }
    n = Math.max(0, n + step);
    if (n) cart[slot] = n; else delete cart[slot];
    render("");
  }

  cards.forEach(function (c) {
    c.querySelector(".more").addEventListener("click", function () { add(c, 1); });
    c.querySelector(".less").addEventListener("click", function () { add(c, -1); });
  });

  window.SVCart = {
    items: function () {
      return cards.filter(function (c) { return cart[c.dataset.slot]; })
        .map(function (c) { return { slot: c.dataset.slot, quantity: cart[c.dataset.slot] }; });
    },
    units: units,
    total: total,
    onChange: function (fn) { listeners.push(fn); },
    /* The machine's latest slots (public status): stock, prices, sold out. */
    update: function (slots) {
      (slots || []).forEach(function (s) {
        var c = card(s.id);
        if (!c) return;
        c.dataset.stock = String(s.enabled ? s.stock : 0);
        c.dataset.price = String(s.price.amount);
      });
      render($("cart-note").textContent);
    },
    setLimit: function (n) { limit = Math.max(1, Math.min(most, n)); render(""); },
    /* The items of an order whose payment failed, back in the cart (within stock). */
    restore: function (items) {
      cart = {};
      (items || []).forEach(function (item) {
        if (card(item.slot) && item.quantity > 0) cart[item.slot] = item.quantity;
      });
      render("");
    },
    say: function (text) { render(text); },
    /* An answer about one slot, in the product's name; "" when it names none. */
    explain: function (res) {
      var error = res.data && res.data.error, c = error && error.slot ? card(error.slot) : null;
      if (!c) return "";
      var what = c.dataset.name + " (" + error.slot + ")";
      if (error.code === "insufficient_stock") return "Fewer " + what + " are left than your cart holds. Please choose fewer.";
      if (error.code === "slot_unavailable") return what + " isn't on sale right now. Please remove it from your cart.";
      return "";
    },
  };
  render("");
})();

// Progressive enhancement: a "Show password" toggle beside each password field marked
// data-show-password. Without JavaScript the field simply stays hidden.
(function () {
  "use strict";
  document.querySelectorAll('input[type="password"][data-show-password]').forEach(function (input) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "show-password";
    button.textContent = "Show password";
    button.setAttribute("aria-controls", input.id);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", function () {
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
    });
    input.insertAdjacentElement("afterend", button);
  });
})();

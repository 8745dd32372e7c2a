// sspr's show-password toggle (progressive enhancement: the page works
// without it). Served as a file, so the pages' CSP needs no inline script.
// A password input with data-show and data-hide gets a button after it
// that switches the input between type=password and type=text; the labels
// come from the page (translated).
(function () {
  'use strict';
  var inputs = document.querySelectorAll('input[type="password"][data-show][data-hide]');
  for (var i = 0; i < inputs.length; i++) {
    (function (input) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'toggle-password';
      button.setAttribute('aria-controls', input.id);
      button.setAttribute('aria-pressed', 'false');
      button.textContent = input.getAttribute('data-show');
      button.addEventListener('click', function () {
        var show = input.type === 'password';
        input.type = show ? 'text' : 'password';
        button.setAttribute('aria-pressed', show ? 'true' : 'false');
        button.textContent = input.getAttribute(show ? 'data-hide' : 'data-show');
        input.focus();
      });
      input.insertAdjacentElement('afterend', button);
    })(inputs[i]);
  }
})();

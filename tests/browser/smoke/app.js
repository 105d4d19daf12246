// The browser smoke test's page (tests/browser/smoke.mjs): the vendored Preact + hooks + htm and uPlot load as
// plain ES modules by relative path, under a CSP without inline script or style.
import { h, render } from '../static/vendor/preact.module.js';
import { useState, useEffect, useRef } from '../static/vendor/hooks.module.js';
import htm from '../static/vendor/htm.module.js';
import uPlot from '../static/vendor/uPlot.esm.js';

const html = htm.bind(h);

// A guest-derived string: it must show as these characters, never as an element.
const hostile = '<img src=x onerror=alert(1)>';

function Chart() {
  const ref = useRef(null);
  useEffect(() => {
    const days = [0, 1, 2, 3, 4, 5, 6].map((d) => 1767225600 + d * 86400);
    const plot = new uPlot({
      title: 'findings per day',
      width: 480,
      height: 200,
      series: [{}, { label: 'findings', stroke: '#c0392b', fill: 'rgba(192,57,43,0.15)' }],
    }, [days, [3, 1, 4, 1, 5, 9, 2]], ref.current);
    document.body.dataset.chart = 'drawn';
    return () => plot.destroy();
  }, []);
  return html`<div id="chart" ref=${ref}></div>`;
}

function App() {
  const [count, setCount] = useState(0);
  return html`
    <main>
      <h1 id="title">coldscan smoke</h1>
      <p>count: <span id="count">${count}</span></p>
      <button id="increment" onClick=${() => setCount(count + 1)}>increment</button>
      <p id="hostile">${hostile}</p>
      <${Chart} />
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));

/* krfeed dashboard: renders what the server pushes over /ws (already coalesced per panel).
   Times are shown in KST whatever the browser's zone; up / buy red, down / sell blue. */
"use strict";
(function () {
  const T = {
    ko: {
      ranking: "프로그램 순매수 순위", stock: "종목", net_amount: "순매수금액", net_qty: "순매수량",
      price: "현재가", rate: "등락률", market: "시장 프로그램매매 (H0UPPGM0)",
      no_market: "H0UPPGM0 구독 없음", flow: "프로그램 순매수 추이", bars: "분당 프로그램 매수·매도",
      ladder: "호가 10단계", tape: "체결", time: "시각", qty: "수량", orders: "주문·체결",
      order_no: "주문번호", side: "구분", order_qty: "주문량", order_price: "주문가", filled: "체결량",
      avg_price: "평균가", remaining: "미체결", status: "상태", fills_n: "체결", health: "상태",
      session: "세션", type: "유형", item: "종목", state: "상태", theme: "테마", connection: "서버 연결",
      buy: "매수", sell: "매도", total: "전체 순매수", arb: "차익", non_arb: "비차익",
      records_s: "수신/초", p50: "지연 p50", p99: "지연 p99", drops: "드롭", decode_errors: "디코드 오류",
      layout: "레이아웃 변경", reconnects: "재접속", uptime: "가동", orders_total: "주문",
      st_open: "접수", st_partially_filled: "부분체결", st_filled: "체결", st_cancelled: "취소",
      st_rejected: "거부", st_pending: "취소요청", st_confirmed: "취소확인",
      live: "실시간", replay: "재생", recording: "기록", unit_amount: "억원", unit_amount_m: "백만원",
      unit_price: "원", unit_qty: "주", reconciled: "복구", last_reconcile: "최근 대사",
      bought: "매수", sold: "매도", fees: "수수료", taxes: "세금", none: "없음",
      s_live: "정상", s_connected: "연결", s_reconnecting: "재접속 중", s_failed: "중단", s_starting: "시작",
      ask_total: "매도잔량", bid_total: "매수잔량",
    },
    en: {
      ranking: "Program net buying", stock: "Stock", net_amount: "Net value", net_qty: "Net qty",
      price: "Price", rate: "Chg%", market: "Market program trading (H0UPPGM0)",
      no_market: "H0UPPGM0 not subscribed", flow: "Program net buying today", bars: "program buy vs sell per minute",
      ladder: "Order book (10 levels)", tape: "Trades", time: "Time", qty: "Qty", orders: "Orders & fills",
      order_no: "Order", side: "Side", order_qty: "Qty", order_price: "Price", filled: "Filled",
      avg_price: "Avg", remaining: "Open", status: "Status", fills_n: "Fills", health: "Health",
      session: "Session", type: "Type", item: "Item", state: "State", theme: "Theme", connection: "server link",
      buy: "Buy", sell: "Sell", total: "Net total", arb: "Arbitrage", non_arb: "Non-arb",
      records_s: "records/s", p50: "latency p50", p99: "latency p99", drops: "dropped", decode_errors: "decode errors",
      layout: "layout notices", reconnects: "reconnects", uptime: "uptime", orders_total: "orders",
      st_open: "open", st_partially_filled: "partial", st_filled: "filled", st_cancelled: "cancelled",
      st_rejected: "rejected", st_pending: "cancel sent", st_confirmed: "cancel ok",
      live: "live", replay: "replay", recording: "recording", unit_amount: "KRW 100M", unit_amount_m: "KRW M",
      unit_price: "KRW", unit_qty: "sh", reconciled: "reconciled", last_reconcile: "last reconcile",
      bought: "bought", sold: "sold", fees: "fees", taxes: "taxes", none: "none",
      s_live: "live", s_connected: "connected", s_reconnecting: "reconnecting", s_failed: "stopped", s_starting: "starting",
      ask_total: "ask total", bid_total: "bid total",
    },
  };
  const PALETTE = ["#f59e0b", "#22d3ee", "#a78bfa", "#34d399", "#f472b6", "#fb923c", "#60a5fa", "#facc15", "#4ade80", "#e879f9"];
  const MAX_POINTS = 8 * 3600;
  const $ = (id) => document.getElementById(id);
  const store = window.localStorage;
  let lang = (store && store.getItem("krfeed.lang")) || "ko";
  let theme = (store && store.getItem("krfeed.theme")) ||
    (window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
  const stats = { messages: {}, renders: 0, bytes: 0, connectedAt: 0, lastAt: 0 };
  window.krfeed = stats;

  const kstTime = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Seoul", hour12: false,
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const kstHM = new Intl.DateTimeFormat("en-GB", { timeZone: "Asia/Seoul", hour12: false,
    hour: "2-digit", minute: "2-digit" });
  const t = (k) => (T[lang] && T[lang][k]) || T.ko[k] || k;
  const nf = new Intl.NumberFormat("en-US");
  const f1 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const f2 = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const int = (v) => (v === null || v === undefined ? "-" : nf.format(v));
  const sgn = (v) => (v === null || v === undefined ? "-" : (v > 0 ? "+" : "") + nf.format(v));
  const cls = (v) => (v > 0 ? "up" : v < 0 ? "down" : "");
  const time = (s) => (s ? kstTime.format(new Date(s * 1000)) : "-");
  // amounts in won, said the way each language says them: 1.23억 / 4,560만 / ₩1.23B / ₩45.6M
  const won = (v, signed) => {
    if (v === null || v === undefined) return "-";
    const a = Math.abs(v), s = v < 0 ? "-" : signed && v > 0 ? "+" : "";
    if (lang === "ko") {
      if (a >= 1e12) return s + f2.format(a / 1e12) + "조";
      if (a >= 1e8) return s + (a >= 1e10 ? nf.format(Math.round(a / 1e8)) : f2.format(a / 1e8)) + "억";
      if (a >= 1e4) return s + nf.format(Math.round(a / 1e4)) + "만";
      return s + nf.format(a) + "원";
    }
    if (a >= 1e12) return s + "₩" + f2.format(a / 1e12) + "T";
    if (a >= 1e9) return s + "₩" + f2.format(a / 1e9) + "B";
    if (a >= 1e6) return s + "₩" + f1.format(a / 1e6) + "M";
    if (a >= 1e3) return s + "₩" + f1.format(a / 1e3) + "K";
    return s + "₩" + nf.format(a);
  };
  const amt = (v) => won(v, true);
  const eok = (v) => (v === null || v === undefined ? null : v);

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function td(text, className, value) {
    const c = el("td", className, text);
    if (value !== undefined && value !== null) c.dataset.value = String(value);
    return c;
  }

  // ---- state kept by the page ----
  let selected = null;
  let ranking = [];
  let names = {};
  const lines = {}; // code -> {base, pts}
  const marketLines = {};
  let lastStats = null;
  let rate = null;

  function mergeLine(store, code, msg) {
    let cur = store[code];
    if (!cur || msg.from < 0) {
      store[code] = { base: msg.from < 0 ? -msg.from - 1 : msg.from, pts: msg.points.slice() };
      return;
    }
    const keep = Math.max(0, msg.from - cur.base);
    if (keep < cur.pts.length) cur.pts.length = keep;
    for (const p of msg.points) cur.pts.push(p);
    if (cur.pts.length > MAX_POINTS) {
      const drop = cur.pts.length - MAX_POINTS;
      cur.pts.splice(0, drop);
      cur.base += drop;
    }
  }

  // ---- charts (uPlot) ----
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), "Asia/Seoul");
  let lineChart = null, lineKey = "", barChart = null, dirtyCharts = false;

  function axis(extra) {
    return Object.assign({ stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 },
      ticks: { stroke: css("--grid"), width: 1 }, font: "11px system-ui, sans-serif" }, extra || {});
  }
  function sizeOf(box, legend) {
    const w = Math.max(200, box.clientWidth);
    const h = Math.max(70, box.clientHeight - (legend ? legend.offsetHeight : 0));
    return { width: w, height: h };
  }
  // time axis in KST: HH:MM (HH:MM:SS when the span is short)
  const timeAxis = () => axis({ values: (u, vs) => {
    const span = vs.length > 1 ? vs[vs.length - 1] - vs[0] : 0;
    const fmt = span < 300 ? kstTime : kstHM;
    return vs.map((v) => fmt.format(new Date(v * 1000)));
  } });
  const valueAxis = () => axis({ size: 64, space: 22, values: (u, vs) => vs.map((v) => won(v, false)) });
  // the x range by hand: a lone point would stretch uPlot's automatic range over years
  function fitX(chart, xs, pad) {
    if (!xs.length) return;
    let min = xs[0], max = xs[xs.length - 1];
    if (max - min < 4 * pad) { min -= pad; max += pad; }
    chart.setScale("x", { min, max });
  }
  function fit(chart, box, legend) {
    chart.setSize(sizeOf(box, legend));
    // the legend re-wraps at the new width: measure it again once laid out
    if (legend) requestAnimationFrame(() => chart.setSize(sizeOf(box, legend)));
  }
  function codeLabel(code) {
    const n = names[code];
    return n ? n + " " + code : code;
  }
  function drawLines() {
    const codes = ranking.map((r) => r.code).filter((c) => lines[c]);
    if (!codes.length) return;
    const key = codes.slice().sort().join(",") + "|" + lang + theme;
    const box = $("chart-lines");
    const tables = codes.map((c) => {
      const pts = lines[c].pts;
      const xs = new Array(pts.length), ys = new Array(pts.length);
      for (let i = 0; i < pts.length; i++) { xs[i] = pts[i][0]; ys[i] = eok(pts[i][2]); }
      return [xs, ys];
    });
    const data = uPlot.join(tables);
    if (!lineChart || key !== lineKey) {
      if (lineChart) lineChart.destroy();
      const sorted = codes.slice().sort();
      const series = [{ label: t("time"), value: (u, v) => (v == null ? "-" : time(v)) }].concat(codes.map((c) => ({
        label: codeLabel(c), stroke: PALETTE[sorted.indexOf(c) % PALETTE.length], width: 1.6,
        spanGaps: true, points: { show: false },
        value: (u, v) => won(v, true),
      })));
      lineChart = new uPlot({ width: 400, height: 200, tzDate, series, cursor: { y: false },
        legend: { live: false }, scales: { x: { time: true, auto: false } },
        axes: [timeAxis(), valueAxis()] }, data, box);
      lineKey = key;
      fit(lineChart, box, box.querySelector(".u-legend"));
    } else {
      lineChart.setData(data);
    }
    fitX(lineChart, data[0], 30);
  }
  function drawBars(msg) {
    const box = $("chart-bars");
    const bars = msg.bars || [];
    const xs = bars.map((b) => b[0]);
    const buy = bars.map((b) => eok(b[1]));
    const sell = bars.map((b) => -eok(b[2]));
    const data = [xs, buy, sell];
    if (!barChart || barChart._lang !== lang + theme) {
      if (barChart) barChart.destroy();
      const bp = uPlot.paths.bars({ size: [0.7, 24] });
      barChart = new uPlot({ width: 400, height: 120, tzDate, legend: { show: false }, cursor: { y: false },
        scales: { x: { time: true, auto: false } },
        series: [{}, { label: t("buy"), stroke: css("--up"), fill: css("--up"), paths: bp, points: { show: false } },
          { label: t("sell"), stroke: css("--down"), fill: css("--down"), paths: bp, points: { show: false } }],
        axes: [timeAxis(), valueAxis()] }, data, box);
      barChart._lang = lang + theme;
      fit(barChart, box);
    } else {
      barChart.setData(data);
    }
    fitX(barChart, xs, 90);
  }
  let marketChart = null, marketKey = "";
  function drawMarket() {
    const codes = Object.keys(marketLines);
    if (!codes.length) return;
    const code = codes[0];
    const pts = marketLines[code].pts;
    const col = (i) => pts.map((p) => p[i]);
    const data = [col(0), col(1), col(2), col(3)];
    const box = $("chart-market");
    if (!marketChart || marketKey !== lang + theme) {
      if (marketChart) marketChart.destroy();
      const s = (label, color, width) => ({ label, stroke: color, width, points: { show: false }, value: (u, v) => won(v, true) });
      marketChart = new uPlot({ width: 300, height: 100, tzDate, cursor: { y: false }, legend: { show: false },
        scales: { x: { time: true, auto: false } },
        series: [{}, s(t("total"), css("--accent"), 1.8), s(t("arb"), PALETTE[1], 1), s(t("non_arb"), PALETTE[2], 1)],
        axes: [timeAxis(), valueAxis()] }, data, box);
      marketKey = lang + theme;
      fit(marketChart, box);
    } else {
      marketChart.setData(data);
    }
    fitX(marketChart, data[0], 30);
  }
  function resizeCharts() {
    if (marketChart) fit(marketChart, $("chart-market"));
    if (lineChart) fit(lineChart, $("chart-lines"), $("chart-lines").querySelector(".u-legend"));
    if (barChart) fit(barChart, $("chart-bars"));
  }
  if (window.ResizeObserver) {
    const ro = new ResizeObserver(() => resizeCharts());
    ro.observe($("chart-lines"));
    ro.observe($("chart-bars"));
    ro.observe($("chart-market"));
  }

  // ---- panels ----
  let lastProgram = null;
  function onProgram(msg) {
    ranking = msg.ranking;
    for (const r of ranking) if (r.name) names[r.code] = r.name;
    for (const code in msg.lines) mergeLine(lines, code, msg.lines[code]);
    if (!selected && msg.selected) selected = msg.selected;
    lastProgram = msg;
    renderRanking();
    const unit = lang === "ko" ? "(원)" : "(KRW)";
    $("rank-unit").textContent = unit;
    $("flow-unit").textContent = unit;
    $("bars-unit").textContent = unit;
    $("bars-title").textContent = msg.selected ? codeLabel(msg.selected) : "";
    dirtyCharts = true;
  }
  function renderRanking() {
    const body = $("ranking").tBodies[0];
    const max = Math.max(1, ...ranking.map((r) => Math.abs(r.net_amount || 0)));
    const frag = document.createDocumentFragment();
    for (const r of ranking) {
      const tr = el("tr");
      tr.dataset.code = r.code;
      if (r.code === selected) tr.className = "sel";
      const name = el("td", "l name");
      name.appendChild(el("b", null, r.name || r.code));
      name.appendChild(el("small", null, r.name ? r.code : r.broker));
      tr.appendChild(name);
      const net = td(amt(r.net_amount), "bar-cell net-amount " + cls(r.net_amount), r.net_amount);
      const bar = el("i");
      const w = Math.round((Math.abs(r.net_amount || 0) / max) * 100);
      bar.style.width = w + "%";
      bar.style.right = "0";
      bar.style.background = (r.net_amount || 0) >= 0 ? css("--up-bg") : css("--down-bg");
      net.insertBefore(bar, net.firstChild);
      tr.appendChild(net);
      tr.appendChild(td(sgn(r.net_qty), "net-qty " + cls(r.net_qty), r.net_qty));
      tr.appendChild(td(int(r.price), "price " + cls(r.change), r.price));
      tr.appendChild(td(r.rate === null || r.rate === undefined ? "-" : (r.rate > 0 ? "+" : "") + f2.format(r.rate) + "%",
        "rate " + cls(r.rate)));
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
  }
  $("ranking").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-code]");
    if (tr) select(tr.dataset.code);
  });
  function select(code) {
    if (!code || code === selected) return;
    selected = code;
    send({ select: code });
    renderRanking();
    $("ladder").tBodies[0].replaceChildren();
    $("tape").tBodies[0].replaceChildren();
    $("q-name").textContent = names[code] || code;
    $("q-code").textContent = code;
  }

  let dirtyMarket = false;
  function onMarket(msg) {
    for (const code in msg.lines) mergeLine(marketLines, code, msg.lines[code]);
    dirtyMarket = true;
    const body = $("market-body");
    if (!msg.latest.length) return;
    const m = msg.latest[0];
    const frag = document.createDocumentFragment();
    const kv = (k, v, c, id) => {
      const d = el("div", "kv");
      d.appendChild(el("span", "k", k));
      const s = el("span", "v " + c, v);
      if (id) s.id = id;
      d.appendChild(s);
      return d;
    };
    frag.appendChild(kv(t("total") + " " + (names[m.code] || m.code), amt(m.net_value), cls(m.net_value), "market-net"));
    frag.appendChild(kv(t("arb"), amt(m.arb_net_value), cls(m.arb_net_value)));
    frag.appendChild(kv(t("non_arb"), amt(m.non_arb_net_value), cls(m.non_arb_net_value)));
    body.replaceChildren(frag);
  }

  let lastTapeTop = "";
  function onTape(msg) {
    if (msg.code !== selected) return;
    if (msg.name) names[msg.code] = msg.name;
    $("q-name").textContent = msg.name || msg.code;
    $("q-code").textContent = msg.code;
    const q = msg.quote;
    if (q) {
      const p = $("q-price");
      p.textContent = int(q.price);
      p.className = cls(q.change);
      const ch = $("q-change");
      ch.textContent = sgn(q.change) + (q.rate !== null && q.rate !== undefined ? " (" + (q.rate > 0 ? "+" : "") + f2.format(q.rate) + "%)" : "");
      ch.className = "q-change " + cls(q.change);
    }
    const body = $("tape").tBodies[0];
    const frag = document.createDocumentFragment();
    const top = msg.trades.length ? msg.trades[0].t + ":" + msg.trades[0].price + ":" + msg.trades[0].qty : "";
    let fresh = top !== lastTapeTop;
    for (const tr of msg.trades.slice(0, 40)) {
      const row = el("tr", (tr.side || "") + (fresh ? " new" : ""));
      fresh = false;
      row.appendChild(td(time(tr.t), "l muted"));
      row.appendChild(td(int(tr.price), "p", tr.price));
      row.appendChild(td(int(tr.qty), "q", tr.qty));
      frag.appendChild(row);
    }
    lastTapeTop = top;
    body.replaceChildren(frag);
  }

  function onBook(msg) {
    if (msg.code !== selected) return;
    const b = msg.book;
    const body = $("ladder").tBodies[0];
    if (!b) { body.replaceChildren(); return; }
    const max = Math.max(1, ...b.asks.map((a) => a[1] || 0), ...b.bids.map((a) => a[1] || 0));
    const frag = document.createDocumentFragment();
    const row = (kind, lvl, i) => {
      const tr = el("tr", kind);
      const qCell = td(int(lvl[1]), "q", lvl[1]);
      const bar = el("i");
      bar.style.width = Math.round(((lvl[1] || 0) / max) * 100) + "%";
      qCell.insertBefore(bar, qCell.firstChild);
      if (kind === "ask") { tr.appendChild(qCell); tr.appendChild(td(int(lvl[0]), "p", lvl[0])); tr.appendChild(td("", "")); }
      else { tr.appendChild(td("", "")); tr.appendChild(td(int(lvl[0]), "p", lvl[0])); tr.appendChild(qCell); }
      if (kind === "ask" && i === 0) tr.className += " mid";
      return tr;
    };
    for (let i = 9; i >= 0; i--) if (b.asks[i][0]) frag.appendChild(row("ask", b.asks[i], i));
    for (let i = 0; i < 10; i++) if (b.bids[i][0]) frag.appendChild(row("bid", b.bids[i], i));
    const tot = el("tr", "tot");
    tot.appendChild(td(int(b.total_ask), "down"));
    tot.appendChild(td(time(b.t), "muted"));
    tot.appendChild(td(int(b.total_bid), "up"));
    frag.appendChild(tot);
    body.replaceChildren(frag);
  }

  function onOrders(msg) {
    $("orders-count").textContent = msg.total ? "(" + int(msg.total) + ")" : "";
    const body = $("blotter").tBodies[0];
    const frag = document.createDocumentFragment();
    for (const o of msg.orders) {
      const tr = el("tr");
      tr.dataset.order = o.broker + ":" + o.order_no;
      tr.appendChild(td(time(o.t), "l muted"));
      const no = td(o.order_no + (o.action !== "new" ? " (" + o.action + ")" : ""), "l order-no");
      no.title = o.broker;
      tr.appendChild(no);
      const nm = td(o.name || o.code || "-", "l");
      nm.title = o.code || "";
      tr.appendChild(nm);
      tr.appendChild(td(o.side ? t(o.side) : "-", "l " + (o.side === "buy" ? "up" : o.side === "sell" ? "down" : "")));
      tr.appendChild(td(int(o.qty), "qty", o.qty));
      tr.appendChild(td(o.price ? int(o.price) : "-", "hide-sm", o.price));
      tr.appendChild(td(int(o.filled), "filled", o.filled));
      tr.appendChild(td(o.avg_price === null ? "-" : Number.isInteger(o.avg_price) ? int(o.avg_price) : f2.format(o.avg_price), "hide-sm", o.avg_price));
      tr.appendChild(td(int(o.remaining), "remaining", o.remaining));
      const st = td("", "l");
      st.appendChild(el("span", "st " + o.status, t("st_" + o.status)));
      if (o.reconciled) st.appendChild(el("span", "rec", t("reconciled") + " " + o.reconciled));
      tr.appendChild(st);
      tr.appendChild(td(int(o.fills.length), "hide-sm"));
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    const parts = [];
    for (const b in msg.summary) {
      const s = msg.summary[b];
      parts.push(b + " " + t("bought") + " " + int(s.buy_amount) + " · " + t("sold") + " " + int(s.sell_amount) +
        " · " + t("fees") + " " + int(s.commission) + " · " + t("taxes") + " " + int(s.tax));
    }
    $("orders-summary").textContent = parts.join("   ");
    const r = msg.reports[msg.reports.length - 1];
    $("reports").textContent = r
      ? t("last_reconcile") + ": " + time(r.t) + " " + r.session + " (" + r.trigger + ") " +
        (r.ok ? "ok" : "FAILED " + (r.error || "")) + " · " + r.orders_listed + " orders, " + r.fills + " fills / " +
        r.fill_qty + " " + t("unit_qty") + " · " + r.seconds + "s"
      : "";
  }

  function onHealth(msg) {
    const m = $("mode");
    const mode = msg.mode || "live";
    m.textContent = t(mode.split(" ")[0]) + (mode.includes("finished") ? " ✓" : "");
    const pills = document.createDocumentFragment();
    for (const s of msg.sessions) {
      const p = el("span", "pill " + s.state, s.name + " " + t("s_" + s.state));
      p.dataset.session = s.name;
      p.dataset.state = s.state;
      p.title = s.reason || "";
      pills.appendChild(p);
    }
    $("sessions").replaceChildren(pills);
    const st = msg.stats;
    if (st && lastStats && st.uptime > lastStats.uptime) {
      rate = (st.records_received - lastStats.records_received) / (st.uptime - lastStats.uptime);
    }
    if (st) lastStats = st;
    const k = document.createDocumentFragment();
    const kv = (key, v, id) => {
      const d = el("div", "kv");
      d.appendChild(el("span", "k", t(key)));
      const s = el("span", "v", v);
      if (id) s.id = id;
      d.appendChild(s);
      return d;
    };
    const lat = (st && st.latency_ms) || {};
    k.appendChild(kv("records_s", rate === null ? "-" : nf.format(Math.round(rate)), "kpi-rate"));
    k.appendChild(kv("p50", lat.p50 == null ? "-" : f2.format(lat.p50) + " ms"));
    k.appendChild(kv("p99", lat.p99 == null ? "-" : f2.format(lat.p99) + " ms"));
    k.appendChild(kv("drops", int(st ? st.dropped : msg.counts.dropped)));
    k.appendChild(kv("decode_errors", int(st ? st.decode_errors : msg.counts.decode_errors)));
    k.appendChild(kv("layout", int(st ? st.layout_notices : msg.counts.layout_notices)));
    $("kpis").replaceChildren(k);
    const body = $("subs").tBodies[0];
    const frag = document.createDocumentFragment();
    for (const s of msg.subscriptions) {
      const tr = el("tr");
      tr.appendChild(td(s.session, "l muted"));
      tr.appendChild(td(s.type, "l"));
      tr.appendChild(td(s.item || "-", "l"));
      const c = td("", "l");
      const span = el("span", "sub-state " + s.state, s.state);
      if (s.reason) span.title = s.reason;
      c.appendChild(span);
      tr.appendChild(c);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    const ul = document.createDocumentFragment();
    for (const n of msg.notices) {
      const li = el("li", n.level);
      li.appendChild(el("time", null, time(n.t)));
      li.appendChild(document.createTextNode(n.text));
      ul.appendChild(li);
    }
    $("notices").replaceChildren(ul);
  }

  // ---- transport ----
  let ws = null, backoff = 500;
  function send(obj) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj));
  }
  const handlers = { program: onProgram, market: onMarket, tape: onTape, book: onBook, orders: onOrders, health: onHealth };
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/ws");
    ws.onopen = () => {
      backoff = 500;
      stats.connectedAt = Date.now();
      $("conn").className = "conn on";
      if (selected) send({ select: selected });
    };
    ws.onmessage = (ev) => {
      stats.bytes += ev.data.length;
      const msg = JSON.parse(ev.data);
      stats.messages[msg.type] = (stats.messages[msg.type] || 0) + 1;
      stats.lastAt = Date.now();
      const h = handlers[msg.type];
      if (h) { h(msg); stats.renders++; }
    };
    ws.onclose = () => {
      $("conn").className = "conn";
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 10000);
    };
  }

  // charts redraw at most 4 times a second (the tables follow every push)
  setInterval(() => {
    if (dirtyMarket && window.uPlot) { dirtyMarket = false; drawMarket(); }
    if (!dirtyCharts || !window.uPlot) return;
    dirtyCharts = false;
    drawLines();
    if (lastProgram) drawBars(lastProgram);
    stats.chartDraws = (stats.chartDraws || 0) + 1;
  }, 250);
  setInterval(() => { $("clock").textContent = kstTime.format(new Date()); }, 1000);

  function applyLang() {
    document.documentElement.lang = lang;
    for (const e of document.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
    for (const e of document.querySelectorAll("[data-i18n-title]")) e.title = t(e.dataset.i18nTitle);
    $("lang").textContent = lang === "ko" ? "EN" : "한";
    if (lastProgram) { onProgram(lastProgram); }
  }
  function applyTheme() {
    document.documentElement.dataset.theme = theme;
    lineKey = "";
    marketKey = "";
    dirtyMarket = true;
    if (barChart) barChart._lang = "";
    dirtyCharts = true;
    if (lastProgram) renderRanking();
  }
  $("lang").addEventListener("click", () => {
    lang = lang === "ko" ? "en" : "ko";
    if (store) store.setItem("krfeed.lang", lang);
    applyLang();
  });
  $("theme").addEventListener("click", () => {
    theme = theme === "dark" ? "light" : "dark";
    if (store) store.setItem("krfeed.theme", theme);
    applyTheme();
  });
  window.krfeedSelect = select;
  stats.charts = () => ({ lines: lineChart, bars: barChart });
  applyTheme();
  applyLang();
  $("clock").textContent = kstTime.format(new Date());
  connect();
})();

/* geoseg's interactive map views (geoseg.report.webmap): every <div class="webmap"> with its
   data in <script type="application/json" id="ID-data">. Leaflet's CRS.Simple is scaled so
   that zoom 0 shows one raster pixel per screen pixel and coordinates are the raster's CRS
   units. Each class is one image overlay: a checkbox adds or removes it. */
(function () {
  "use strict";
  function fmt(v, units) {
    var d = units === "deg" ? 5 : (units === "px" ? 0 : 1);
    return v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function box(b) { return [[b.bottom, b.left], [b.top, b.right]]; }
  function el(tag, cls, parent, text) {
    var e = L.DomUtil.create(tag, cls, parent);
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function build(div) {
    var d = JSON.parse(document.getElementById(div.id + "-data").textContent);
    div.style.height = d.height + "px";
    var crs = L.extend({}, L.CRS.Simple, {
      transformation: new L.Transformation(1 / d.res, 0, -1 / d.res, 0)
    });
    var map = L.map(div, {
      crs: crs, zoomSnap: 0.25, zoomDelta: 0.5, minZoom: -12, maxZoom: 6,
      attributionControl: false
    });
    map.fitBounds(box(d.bounds));
    if (d.scene) {
      L.imageOverlay(d.scene.uri, box(d.scene.bounds), { alt: "scene", className: "scene" })
        .addTo(map);
    }
    var groups = d.layers.map(function (layer, i) {
      var overlays = layer.classes.map(function (c) {
        return L.imageOverlay(c.uri, box(layer.bounds), {
          alt: layer.title + ": " + c.name, className: "class-layer"
        });
      });
      return { layer: layer, overlays: overlays, on: i === 0, opacity: 1 };
    });
    var legend = L.control({ position: "topright" });
    legend.onAdd = function () {
      var root = el("div", "webmap-legend");
      L.DomEvent.disableClickPropagation(root);
      L.DomEvent.disableScrollPropagation(root);
      groups.forEach(function (g, gi) {
        var head = el("label", "webmap-group", root);
        var all = el("input", "", head);
        all.type = "checkbox";
        all.checked = g.on;
        all.setAttribute("data-layer", gi);
        el("span", "", head, " " + g.layer.title);
        var list = el("div", "webmap-classes", root);
        var boxes = g.layer.classes.map(function (c, ci) {
          var row = el("label", "webmap-class", list);
          var cb = el("input", "", row);
          cb.type = "checkbox";
          cb.checked = true;
          cb.setAttribute("data-class", c.name);
          cb.setAttribute("data-layer", gi);
          var sw = el("span", "sw", row);
          sw.style.background = c.color;
          el("span", "", row, c.name);
          L.DomEvent.on(cb, "change", function () { show(g, ci, g.on && cb.checked); });
          return cb;
        });
        var slider = el("input", "webmap-opacity", root);
        slider.type = "range"; slider.min = 0; slider.max = 100; slider.value = 100;
        slider.title = "opacity of " + g.layer.title;
        slider.setAttribute("aria-label", slider.title);
        L.DomEvent.on(slider, "input", function () {
          g.opacity = slider.value / 100;
          g.overlays.forEach(function (o) { o.setOpacity(g.opacity); });
        });
        L.DomEvent.on(all, "change", function () {
          g.on = all.checked;
          boxes.forEach(function (cb, ci) { show(g, ci, g.on && cb.checked); });
        });
        g.boxes = boxes;
      });
      return root;
    };
    function show(g, ci, visible) {
      var o = g.overlays[ci];
      if (visible && !map.hasLayer(o)) { o.addTo(map); o.setOpacity(g.opacity); }
      if (!visible && map.hasLayer(o)) { map.removeLayer(o); }
    }
    groups.forEach(function (g) {
      if (g.on) { g.overlays.forEach(function (o) { o.addTo(map); }); }
    });
    legend.addTo(map);
    if (d.scale) { L.control.scale({ imperial: false, maxWidth: 160 }).addTo(map); }
    var where = L.control({ position: "bottomright" });
    where.onAdd = function () {
      var root = el("div", "webmap-where", undefined, d.crs);
      map.on("mousemove", function (e) {
        var y = d.down ? -e.latlng.lat : e.latlng.lat;
        var names = d.units === "deg" ? ["lon", "lat"] : (d.units === "px" ? ["col", "row"] : ["E", "N"]);
        root.textContent = names[0] + " " + fmt(e.latlng.lng, d.units) + "  " + names[1] + " " +
          fmt(y, d.units) + (d.units === "px" ? "" : "  · " + d.crs);
      });
      map.on("mouseout", function () { root.textContent = d.crs; });
      return root;
    };
    where.addTo(map);
    div.geosegMap = map;  // for scripts and tests: the Leaflet map of this view
  }
  function start() {
    Array.prototype.forEach.call(document.querySelectorAll(".webmap"), build);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

/* movierec web page: plain JavaScript over the JSON API of movierec.serving.app (no build step).
 *
 * A private profile code (kept in localStorage) names this browser's ratings on the server:
 * POST /ratings stores them, GET /ratings brings them back after a reload, and
 * GET /profile/recommend turns them into recommendations. Before any rating, taste groups
 * (GET/POST /onboarding) give first recommendations. Predicted scores are never shown:
 * each recommendation shows its reason instead.
 *
 * The stars are the model's (GET /health: rating_scale): half stars up to 5 (MovieLens'
 * 0.5-5, or 1-5 with the half star below 1 shown but not given), whole stars up to 10
 * (ten stars for 1-10), and ten stars of a tenth of the scale each beyond that. Movie IDs
 * are kept as the API gives them: numbers, or text for a model trained on text IDs.
 */
"use strict";

(function () {
  const K = 10;                 // recommendations and similar movies shown
  const GROUPS = 8;             // taste groups offered on a first visit
  const SEARCH_LIMIT = 20;      // search results shown
  const SEARCH_DELAY_MS = 250;  // debounce for the search box
  const SAVE_DELAY_MS = 400;    // ratings changed within this window are sent together
  const STORE = {profile: "movierec.profile", groups: "movierec.groups", onboarded: "movierec.onboarded"};

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $("status"), search: $("search"), searchForm: $("search-form"),
    onboarding: $("onboarding"), groups: $("groups"), groupsForm: $("groups-form"),
    groupsSubmit: $("groups-submit"), groupsSkip: $("groups-skip"), groupsOpen: $("groups-open"),
    results: $("results"), resultList: $("result-list"), resultsTitle: $("results-title"),
    ratedList: $("rated-list"), nRated: $("n-rated"), mineEmpty: $("mine-empty"),
    recs: $("recs"), recList: $("rec-list"), recsNote: $("recs-note"), recsTitle: $("recs-title"),
    dialog: $("movie-dialog"), dialogTitle: $("dialog-title"), dialogMeta: $("dialog-meta"),
    dialogRate: $("dialog-rate"), dialogClose: $("dialog-close"),
    similarList: $("similar-list"), similarNote: $("similar-note"),
    modelName: $("model-name"), modelVersion: $("model-version"),
    helpLiked: $("help-liked"), helpDisliked: $("help-disliked"), helpScale: $("help-scale"),
  };

  const state = {
    profile: null,
    ratings: new Map(),   // movie_id (number or text, as the API gives it) -> rating on the model's scale
    scale: [0.5, 5],      // the stars the model takes (GET /health: rating_scale)
    stars: {count: 5, step: 0.5},  // the star widget for that scale (starsFor)
    likedThreshold: null, // stars at or above which a rating says "more like this"
    movies: new Map(),    // movie_id -> Movie, from any answer
    pending: new Map(),   // movie_id -> rating not yet sent
    groupIds: [],         // taste groups picked on the first visit
    groupsLoaded: false,
    saveTimer: 0,
    searchTimer: 0,
    searchAbort: null,
    recsSeq: 0,
    widgetSeq: 0,
    dialogOpener: null,
  };

  // ---------------------------------------------------------------- storage, profile
  function storageGet(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return null; }
  }
  function storageSet(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: memory only */ }
  }
  function newProfile() {
    const bytes = new Uint8Array(18);
    crypto.getRandomValues(bytes);
    let text = "";
    bytes.forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function loadProfile() {
    let token = storageGet(STORE.profile);
    if (!token || !/^[A-Za-z0-9_-]{8,64}$/.test(token)) {
      token = newProfile();
      storageSet(STORE.profile, token);
    }
    state.profile = token;
    try {
      const groups = JSON.parse(storageGet(STORE.groups) || "[]");
      state.groupIds = Array.isArray(groups) ? groups.filter(Number.isInteger) : [];
    } catch (e) { state.groupIds = []; }
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {}

  function errorText(detail, status) {
    if (typeof detail === "string" && detail) return detail;
    if (Array.isArray(detail) && detail.length) {
      return detail.map((d) => (d && d.msg) ? d.msg : String(d)).join("; ") + ".";
    }
    return `The server answered ${status}; try again in a moment.`;
  }

  async function api(path, options) {
    const opts = options || {};
    const init = {method: opts.method || "GET", headers: {Accept: "application/json"}, signal: opts.signal,
                  keepalive: Boolean(opts.keepalive)};
    if (opts.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body);
    }
    let response;
    try {
      response = await fetch(new URL(path, document.baseURI), init);
    } catch (e) {
      if (e && e.name === "AbortError") throw e;
      throw new ApiError("Cannot reach the movierec server; check that it is running, then try again.");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      throw new ApiError(errorText(data && data.detail, response.status));
    }
    if (data && data.model) setModel(data.model);
    return data;
  }

  /** The star widget for a scale [low, high]: `count` stars, each click `step` stars apart. */
  function starsFor(scale) {
    const high = scale[1];
    if (high <= 5) return {count: Math.max(1, Math.ceil(high)), step: 0.5};
    if (high <= 10) return {count: Math.ceil(high), step: 1};
    return {count: 10, step: high / 10};
  }

  /** The values the widget can give, lowest first (values off the scale included: shown, not given). */
  function starValues() {
    const {count, step} = state.stars;
    const n = Math.round(count / step);
    return Array.from({length: n}, (_, i) => Math.round((i + 1) * step * 1000) / 1000);
  }

  function onScale(value) {
    return value >= state.scale[0] - 1e-9 && value <= state.scale[1] + 1e-9;
  }

  /** The model's star scale and liked threshold (GET /health), and the help that explains them. */
  function setScale(health) {
    if (health && Array.isArray(health.rating_scale)) {
      const low = Number(health.rating_scale[0]);
      const high = Number(health.rating_scale[1]);
      if (Number.isFinite(low) && Number.isFinite(high) && low < high) state.scale = [low, high];
    }
    state.stars = starsFor(state.scale);
    state.likedThreshold = health && health.liked_threshold != null ? Number(health.liked_threshold) : null;
    // the threshold as the widget can give it: the fewest stars that count as liked
    const liked = state.likedThreshold == null ? null
      : (starValues().find((v) => v >= state.likedThreshold - 1e-9 && onScale(v)) ?? state.likedThreshold);
    ui.helpLiked.textContent = liked == null ? "Any rating" : `${formatStars(liked)} or more`;
    ui.helpDisliked.textContent = liked == null ? "(none)" : `Below ${formatStars(liked)}`;
    ui.helpScale.textContent = `${formatStars(state.scale[0])} to ${formatStars(state.scale[1])}`;
  }

  function formatStars(value) {
    const text = Number.isInteger(value) ? String(value) : value.toFixed(value * 2 === Math.round(value * 2) ? 1 : 2);
    return `${text} star${value === 1 ? "" : "s"}`;
  }

  function setModel(model) {
    ui.modelName.textContent = model.name || "unknown";
    ui.modelVersion.textContent = model.version == null ? "(unversioned)" : String(model.version);
  }

  function showStatus(message, isError) {
    ui.status.textContent = message;
    ui.status.classList.toggle("error", Boolean(isError));
    ui.status.setAttribute("role", isError ? "alert" : "status");
    ui.status.hidden = false;
  }
  function clearStatus() {
    ui.status.hidden = true;
    ui.status.textContent = "";
  }
  function report(error) {
    if (error && error.name === "AbortError") return;
    showStatus(error instanceof ApiError ? error.message
      : "Something went wrong in this page; reload it and try again.", true);
  }

  // ---------------------------------------------------------------- building blocks
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") {
        node.setAttribute(key, value);
      } else node[key] = value;
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function isMovieId(id) {
    return Number.isInteger(id) || (typeof id === "string" && id.length > 0);
  }

  /** A CSS attribute selector's value for a movie ID (text IDs may hold any character). */
  function idAttr(id) {
    return CSS.escape(String(id));
  }

  function remember(movie) {
    if (movie && isMovieId(movie.movie_id)) {
      const known = state.movies.get(movie.movie_id) || {};
      state.movies.set(movie.movie_id, Object.assign({}, known, movie));
    }
    return movie;
  }

  /** "Godfather, The" (as MovieLens writes it) -> "The Godfather". */
  function displayTitle(title) {
    const m = /^(.*), (The|A|An)$/.exec(title || "");
    return m ? `${m[2]} ${m[1]}` : (title || "");
  }

  function label(movie) {
    const title = displayTitle(movie.title);
    return movie.year ? `${title} (${movie.year})` : title;
  }

  /** Genres and rating count (the year is in the title). */
  function metaText(movie) {
    const parts = [];
    if (movie.genres && movie.genres.length) parts.push(movie.genres.join(", "));
    if (Number.isInteger(movie.n_ratings)) {
      parts.push(`${movie.n_ratings} rating${movie.n_ratings === 1 ? "" : "s"}`);
    }
    return parts.join(" · ");
  }

  function formatRating(value) {
    if (!value) return "not rated";
    const whole = state.stars.step >= 1 && Number.isInteger(value);
    return `${whole ? String(value) : value.toFixed(1)} / ${state.scale[1]}`;
  }

  /** One radio input per value the stars can give (ten for 0.5 .. 5 in half stars, ten for
   *  1 .. 10 in whole stars) in one group: arrow keys move between them. Values off the
   *  model's scale (0.5 for a 1-5 model) are shown but cannot be chosen. */
  function starWidget(movie) {
    const id = movie.movie_id;
    const name = `rate-${++state.widgetSeq}`;
    const current = state.ratings.get(id) || 0;
    const half = state.stars.step === 0.5;
    const fieldset = el("fieldset", {class: "stars", "data-movie": String(id)},
      el("legend", {class: "sr-only", text: `Your rating for ${label(movie)}`}));
    starValues().forEach((value, i) => {
      const inputId = `${name}-${i + 1}`;
      const input = el("input", {type: "radio", name, id: inputId, value: String(value)});
      input.checked = value === current;
      input.disabled = !onScale(value);
      const text = `${value} star${value === 1 ? "" : "s"}`;
      // half stars: two labels per star (left and right half); whole ones: a label per star
      const lab = el("label", {for: inputId, class: half ? (i % 2 ? "right" : "left") : "full", title: text,
                               "data-value": String(value)},
        el("span", {class: "sr-only", text}));
      if (!half) lab.style.width = "1.6rem";
      fieldset.append(input, lab);
    });
    fieldset.append(el("span", {class: "value", "aria-hidden": "true", text: formatRating(current)}));
    paintStars(fieldset, current);
    fieldset.addEventListener("change", (event) => {
      const value = Number(event.target.value);
      if (onScale(value)) setRating(id, value);
    });
    fieldset.addEventListener("pointerover", (event) => {
      const value = Number(event.target.closest("label") && event.target.closest("label").dataset.value);
      if (value && onScale(value)) paintStars(fieldset, value);
    });
    fieldset.addEventListener("pointerleave", () => paintStars(fieldset, state.ratings.get(id) || 0));
    return fieldset;
  }

  function paintStars(fieldset, value) {
    fieldset.querySelectorAll("label").forEach((lab) => {
      lab.classList.toggle("on", Number(lab.dataset.value) <= value);
    });
  }

  function syncWidgets(movieId) {
    const value = state.ratings.get(movieId) || 0;
    document.querySelectorAll(`fieldset.stars[data-movie="${idAttr(movieId)}"]`).forEach((fieldset) => {
      fieldset.querySelectorAll("input").forEach((input) => { input.checked = Number(input.value) === value; });
      fieldset.querySelector(".value").textContent = formatRating(value);
      paintStars(fieldset, value);
    });
  }

  /** One list row: title (opens the movie), year and genres, an optional reason, stars. */
  function movieRow(movie, reason) {
    remember(movie);
    const title = el("button", {type: "button", class: "title", "data-open": String(movie.movie_id), text: label(movie)});
    title.addEventListener("click", () => openMovie(movie.movie_id, title));
    const info = el("div", {class: "info"}, title,
      el("div", {class: "meta", text: metaText(movie)}),
      reason ? el("div", {class: "reason", text: reason}) : null);
    return el("li", {class: "movie", "data-movie": String(movie.movie_id)}, info, starWidget(movie));
  }

  // ---------------------------------------------------------------- ratings
  function setRating(movieId, value) {
    state.ratings.set(movieId, value);
    state.pending.set(movieId, value);
    syncWidgets(movieId);
    addRatedRow(movieId);
    window.clearTimeout(state.saveTimer);
    state.saveTimer = window.setTimeout(saveRatings, SAVE_DELAY_MS);
  }

  async function saveRatings() {
    if (!state.pending.size) return;
    const batch = Array.from(state.pending, ([movie_id, rating]) => ({movie_id, rating}));
    state.pending.clear();
    try {
      await api("ratings", {method: "POST", body: {profile: state.profile, ratings: batch}, keepalive: true});
      clearStatus();
      hideOnboarding();
      await refreshRecs();
    } catch (error) {
      batch.forEach(({movie_id, rating}) => {
        if (!state.pending.has(movie_id)) state.pending.set(movie_id, rating);
      });
      report(error);
    }
  }

  function updateRatedCount() {
    const n = state.ratings.size;
    ui.nRated.textContent = `(${n})`;
    ui.mineEmpty.hidden = n > 0;
  }

  function addRatedRow(movieId) {
    updateRatedCount();
    if (ui.ratedList.querySelector(`li[data-movie="${idAttr(movieId)}"]`)) return;
    const movie = state.movies.get(movieId) || {movie_id: movieId, title: `Movie ${movieId}`, genres: []};
    ui.ratedList.prepend(movieRow(movie, null));
  }

  async function loadRatings() {
    const answer = await api(`ratings?profile=${encodeURIComponent(state.profile)}`);
    const rows = (answer.ratings || []).slice().sort((a, b) => (a.timestamp || 0) - (b.timestamp || 0));
    rows.forEach((r) => state.ratings.set(r.movie_id, r.rating));
    const missing = rows.map((r) => r.movie_id).filter((id) => !state.movies.has(id));
    await fetchMovies(missing);
    rows.forEach((r) => addRatedRow(r.movie_id));  // oldest first, each prepended: newest on top
    updateRatedCount();
  }

  async function fetchMovies(ids) {
    const queue = ids.slice();
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try { remember(await api(`movies/${encodeURIComponent(id)}`)); } catch (e) { /* shown by its id */ }
      }
    };
    await Promise.all(Array.from({length: Math.min(6, queue.length)}, worker));
  }

  // ---------------------------------------------------------------- recommendations
  async function refreshRecs() {
    const seq = ++state.recsSeq;
    let answer;
    let source;
    ui.recs.setAttribute("aria-busy", "true");
    try {
      if (state.ratings.size) {
        answer = await api(`profile/recommend?profile=${encodeURIComponent(state.profile)}&k=${K}`);
        source = "ratings";
      } else if (state.groupIds.length) {
        answer = await api("onboarding", {method: "POST", body: {group_ids: state.groupIds, groups: GROUPS, k: K}});
        source = "groups";
      } else {
        answer = null;
      }
    } finally {
      if (seq === state.recsSeq) ui.recs.setAttribute("aria-busy", "false");
    }
    if (seq !== state.recsSeq) return;  // a newer refresh is on its way
    renderRecs(answer, source);
  }

  function renderRecs(answer, source) {
    const hadFocus = ui.recList.contains(document.activeElement);
    ui.recList.replaceChildren();
    if (!answer) {
      ui.recsNote.textContent = "Rate a few movies (or pick taste groups) and recommendations appear here.";
      return;
    }
    const items = answer.items || [];
    let note;
    if (answer.fallback) {
      note = "Popular picks for now" + (answer.fallback_reason ? `: ${answer.fallback_reason}` : ".");
    } else if (source === "groups") {
      note = "From the taste groups you picked. Rate movies you have seen to sharpen them.";
    } else {
      const n = state.ratings.size;
      note = `From your ${n} rating${n === 1 ? "" : "s"}. They change with every movie you rate.`;
    }
    ui.recsNote.textContent = items.length ? note : "No recommendations left: you have rated everything we know!";
    items.forEach((item) => ui.recList.append(movieRow(item, item.reason || null)));
    if (hadFocus) ui.recsTitle.focus();
  }

  // ---------------------------------------------------------------- search
  function onSearchInput() {
    window.clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(runSearch, SEARCH_DELAY_MS);
  }

  async function runSearch() {
    const q = ui.search.value.trim();
    if (state.searchAbort) state.searchAbort.abort();
    if (!q) {
      ui.results.hidden = true;
      ui.resultList.replaceChildren();
      return;
    }
    const controller = new AbortController();
    state.searchAbort = controller;
    try {
      const answer = await api(`movies?q=${encodeURIComponent(q)}&limit=${SEARCH_LIMIT}`, {signal: controller.signal});
      if (controller.signal.aborted) return;
      clearStatus();
      const items = answer.items || [];
      ui.resultsTitle.textContent = items.length ? `Movies matching “${q}”` : `No movie matches “${q}”`;
      ui.resultList.replaceChildren(...items.map((m) => movieRow(m, null)));
      ui.results.hidden = false;
    } catch (error) {
      report(error);
    }
  }

  // ---------------------------------------------------------------- taste groups
  async function showOnboarding() {
    ui.onboarding.hidden = false;
    ui.groupsOpen.hidden = true;
    if (state.groupsLoaded) return;
    ui.groups.replaceChildren(el("p", {class: "hint", text: "Loading taste groups…"}));
    const answer = await api(`onboarding?groups=${GROUPS}`);
    ui.groups.replaceChildren(...(answer.groups || []).map(groupCard));
    state.groupsLoaded = true;
  }

  function groupCard(group) {
    (group.movies || []).forEach(remember);
    const titles = (group.movies || []).slice(0, 4).map((m) => displayTitle(m.title)).join(" · ");
    const input = el("input", {type: "checkbox", name: "group", value: String(group.group_id)});
    input.checked = state.groupIds.includes(group.group_id);
    return el("label", {class: "group", "data-group": String(group.group_id)}, input,
      el("span", {class: "label", text: group.label}),
      el("span", {class: "genres", text: (group.genres || []).join(", ")}),
      el("span", {class: "titles", text: titles}));
  }

  function hideOnboarding() {
    ui.onboarding.hidden = true;
    ui.groupsOpen.hidden = false;
    storageSet(STORE.onboarded, "1");
  }

  async function onGroupsSubmit(event) {
    event.preventDefault();
    const picked = Array.from(ui.groups.querySelectorAll("input:checked"), (input) => Number(input.value));
    if (!picked.length) {
      showStatus("Pick at least one taste group, or choose Skip and search movies to rate.", true);
      return;
    }
    state.groupIds = picked;
    storageSet(STORE.groups, JSON.stringify(picked));
    ui.groupsSubmit.disabled = true;
    try {
      // With ratings, recommendations follow the ratings; the groups only start a new profile.
      const answer = await api("onboarding", {method: "POST", body: {group_ids: picked, groups: GROUPS, k: K}});
      clearStatus();
      hideOnboarding();
      if (!state.ratings.size) {
        state.recsSeq += 1;
        renderRecs(answer, "groups");
      }
      ui.recsTitle.focus();
    } catch (error) {
      report(error);
    } finally {
      ui.groupsSubmit.disabled = false;
    }
  }

  // ---------------------------------------------------------------- one movie and similar ones
  async function openMovie(movieId, opener) {
    state.dialogOpener = opener || document.activeElement;
    const known = state.movies.get(movieId);
    ui.dialogTitle.textContent = known ? label(known) : "Loading…";
    ui.dialogMeta.textContent = known ? metaText(known) : "";
    ui.dialogRate.replaceChildren();
    ui.similarList.replaceChildren();
    ui.similarNote.hidden = true;
    if (!ui.dialog.open) ui.dialog.showModal();
    try {
      const path = encodeURIComponent(movieId);
      const [movie, similar] = await Promise.all([api(`movies/${path}`), api(`similar/${path}?k=${K}`)]);
      remember(movie);
      ui.dialogTitle.textContent = label(movie);
      ui.dialogMeta.textContent = metaText(movie);
      ui.dialogRate.replaceChildren(el("span", {class: "meta", text: "Your rating: "}), starWidget(movie));
      if (similar.fallback) {
        ui.similarNote.textContent = "This model has no notion of similar movies; these share genres and are popular.";
        ui.similarNote.hidden = false;
      }
      const items = similar.items || [];
      ui.similarList.replaceChildren(...items.map((m) => movieRow(m, m.reason || null)));
    } catch (error) {
      ui.dialogMeta.textContent = error instanceof ApiError ? error.message : "This movie could not be loaded.";
    }
  }

  function closeDialog() {
    if (ui.dialog.open) ui.dialog.close();
  }

  // ---------------------------------------------------------------- start
  async function start() {
    loadProfile();
    ui.search.addEventListener("input", onSearchInput);
    ui.searchForm.addEventListener("submit", (event) => {
      event.preventDefault();
      window.clearTimeout(state.searchTimer);
      runSearch();
    });
    ui.groupsForm.addEventListener("submit", onGroupsSubmit);
    ui.groupsSkip.addEventListener("click", () => { hideOnboarding(); ui.search.focus(); });
    ui.groupsOpen.addEventListener("click", () => showOnboarding().catch(report));
    ui.dialogClose.addEventListener("click", closeDialog);
    ui.dialog.addEventListener("close", () => {
      const opener = state.dialogOpener;
      state.dialogOpener = null;
      if (opener && document.contains(opener)) opener.focus();
    });
    ui.dialog.addEventListener("click", (event) => { if (event.target === ui.dialog) closeDialog(); });
    ui.recsTitle.tabIndex = -1;
    window.addEventListener("beforeunload", () => { if (state.pending.size) saveRatings(); });

    try {
      setScale(await api("health"));
    } catch (error) {
      report(error);
    }
    try {
      await loadRatings();
    } catch (error) {
      report(error);
    }
    if (!state.ratings.size && !storageGet(STORE.onboarded)) {
      showOnboarding().catch(report);
    } else {
      ui.groupsOpen.hidden = false;
    }
    refreshRecs().catch(report);
  }

  document.documentElement.dataset.ready = "loading";
  start().finally(() => { document.documentElement.dataset.ready = "yes"; });
})();

"""A simulated county with known truth for the integrity detectors (tests and
scripts/eval_integrity.py).

Honest residents answer 30-item assessment forms (a few fixed forms drawn from a 300-item bank
of four-option items, options shuffled per attempt) under a 2PL model; their wrong answers pick
distractors by item-specific popularity (Dirichlet(0.8) over the three distractors: one
distractor often draws most wrong answers, so honest residents share wrong answers often).
Time per item is lognormal around 12 s with a person-level speed factor. Phones are one per
resident except families of two (and a few of three) sharing one; IP /24s are a village's
Wi-Fi or a carrier NAT, each behind many residents. Submissions follow a day's rhythm (evening
peak). Weekly counts are gamma-Poisson around each township's mean.

Scenarios (labels): "helper" (one phone, 40 residents in two hours, the answers of the helper, a
village cadre who knows about five in six: his wrong answers are the same on every form, and his
residents score far above their neighbours, so they lift the township's literate share),
"speeder" and "straight_liner" (random or same-position clicking at 1-2 s per item), "ring"
(15 residents copying one answer sheet with 4 wrong answers, own phones, normal speed), "leaked"
(every answer right at 3.5-5 s per item), "helper_fabricated" (a registered helper who, one day a
week, issues six residents' sessions in six townships at 09:00 and from 10:00 submits them a
minute or two apart with his own answers: each session's own time looks long, and each
township-week holds one of them). Honest labels: "honest", "campaign" (a campaign channel that
brings high scorers, 50 of them in one hour at the village hall), "assisted" (helper sessions:
a volunteer's tablet, residents' own answers), "paper" (a helper's paper forms: the residents'
own answers, untimed). The last two scenarios are drawn after all the others, so adding them
left every earlier attempt as it was.

For the township estimates (scripts/eval_integrity.py, section 6) every attempt's profile also
holds an age band, gender, education and population group, drawn from one census mix that is the
same in every township and independent of ability (`County.census` holds the matching census),
from a generator of their own so the rest of the county is drawn as before. The truth is known:
`County.ability` holds each township's mean ability (honest residents' θ ~ N(mean, 1)),
`County.abilities` every honestly answered attempt's θ, and `true_share` the township
population's expected literate share (percent score ≥ 70 on a form drawn at random)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy import special

from scoring.integrity.jumps import WeekStats
from scoring.integrity.records import CHINA
from scoring.statistics.estimation import AGE_BANDS, EDUCATIONS, GENDERS, GROUPS

KEYS = ("A", "B", "C", "D")
HONEST_LABELS = frozenset({"honest", "campaign", "assisted", "paper"})
DISHONEST_LABELS = frozenset(
    {"helper", "speeder", "straight_liner", "ring", "leaked", "helper_fabricated"}
)
FIRST_MONDAY = datetime(2026, 11, 2, tzinfo=CHINA)  # ISO week 2026-W45
# Relative submissions per hour of the day (China time): a working day, an evening peak.
HOURLY = np.array(
    [0.1] * 6 + [0.5, 1, 1.5, 1.5, 1.5, 2, 2, 1.5, 1.5, 1.5, 1.5, 2, 3, 4, 4, 3, 1.5, 0.5]
)
HOURLY = HOURLY / HOURLY.sum()
LITERATE = 70.0  # percent score
HELPER_ABILITY = 1.2  # the helper's θ: he knows about five answers in six
# The census mix of ages 18-69 (every township alike) and the group shares; ability does not
# depend on them, so a post-stratified estimate should match the township's plain share.
AGE_MIX = np.array([0.2, 0.2, 0.21, 0.21, 0.18])
MALE = 0.51
EDUCATION_MIX = np.array([0.3, 0.4, 0.2, 0.1])
GROUP_MIX = np.array([0.35, 0.25, 0.1, 0.1, 0.05, 0.15])


@dataclass(frozen=True)
class CountySpec:
    townships: int = 12
    weeks: int = 4
    per_week: float = 60.0  # mean honest assessments per township-week
    history_weeks: int = 8  # earlier weeks, as WeekStats, for the township-week test
    bank: int = 300
    forms: int = 8
    form_length: int = 30
    helper: int = 40
    speeders: int = 30
    straight_liners: int = 10  # of the speeders
    ring: int = 15
    ring_wrong: int = 4
    leaked: int = 10
    campaign: int = 120
    campaign_burst: int = 50
    assisted: int = 12
    fabricated_per_week: int = 6  # a helper's made-up sessions, one day a week
    paper: int = 20  # a helper's honest paper forms
    honest_helpers: int = 0  # more honest helpers (sessions and paper), for the helper checks
    family_share: float = 0.08  # share of honest residents with a second on their phone
    triples: int = 3  # households of three on one phone
    overdispersion: float = 60.0  # gamma shape of the weekly counts (variance m + m²/k)
    distractors: float = (
        0.8  # Dirichlet concentration of distractor popularity (lower: one dominates)
    )


@dataclass(frozen=True)
class Bank:
    a: np.ndarray
    b: np.ndarray
    key: np.ndarray  # index of the right option
    popularity: np.ndarray  # (items, 4): share among wrong answers, 0 at the key
    forms: np.ndarray  # (forms, form_length) item indices


@dataclass
class County:
    spec: CountySpec
    bank: Bank
    townships: list[str]
    weeks: list[str]
    docs: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    history_stats: dict[str, list[WeekStats]] = field(default_factory=dict)
    planted_jumps: set[tuple[str, str, str]] = field(default_factory=set)
    scenario_weeks: set[tuple[str, str]] = field(default_factory=set)
    ability: np.ndarray = field(default_factory=lambda: np.zeros(0))  # township mean θ
    abilities: dict[str, float] = field(default_factory=dict)  # θ of honestly answered attempts
    census: np.ndarray = field(default_factory=lambda: np.zeros((0, 5, 2, 4)))  # T × 5 × 2 × 4

    def ids(self, *labels: str) -> set[str]:
        return {a for a, label in self.labels.items() if label in labels}


def make_bank(spec: CountySpec, rng: np.random.Generator) -> Bank:
    n = spec.bank
    key = rng.integers(0, 4, n)
    popularity = np.zeros((n, 4))
    for i in range(n):
        wrong = [k for k in range(4) if k != key[i]]
        popularity[i, wrong] = rng.dirichlet(np.full(3, spec.distractors))
    forms = np.array([rng.choice(n, spec.form_length, replace=False) for _ in range(spec.forms)])
    return Bank(
        a=np.clip(rng.lognormal(0.0, 0.3, n), 0.4, 2.5),
        b=rng.normal(-0.5, 0.9, n),
        key=key,
        popularity=popularity,
        forms=forms,
    )


def _hash(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:16]


class _Builder:
    """Makes attempt documents; one counter for unique ids. Demographics come from a generator
    of their own (`people`), so adding them left every other draw as it was."""

    def __init__(
        self, county: County, rng: np.random.Generator, people: np.random.Generator
    ) -> None:
        self.county = county
        self.bank = county.bank
        self.rng = rng
        self.people = people
        self.count = 0

    def demographics(self) -> dict[str, str]:
        draw = self.people
        return {
            "age_band": AGE_BANDS[int(draw.choice(len(AGE_BANDS), p=AGE_MIX))],
            "gender": GENDERS[int(draw.random() >= MALE)],
            "education": EDUCATIONS[int(draw.choice(len(EDUCATIONS), p=EDUCATION_MIX))],
            "group": GROUPS[int(draw.choice(len(GROUPS), p=GROUP_MIX))],
        }

    def resident(self) -> str:
        self.count += 1
        return f"{self.count:024x}"

    def moment(self, week: int, day: int | None = None) -> datetime:
        rng = self.rng
        day = int(rng.integers(0, 7)) if day is None else day
        hour = int(rng.choice(24, p=HOURLY))
        offset = timedelta(days=7 * week + day, hours=hour, seconds=float(rng.uniform(0, 3600)))
        return FIRST_MONDAY + offset

    def honest_choices(self, items: np.ndarray, theta: float) -> list[int]:
        bank, rng = self.bank, self.rng
        right = rng.random(items.size) < special.expit(bank.a[items] * (theta - bank.b[items]))
        return [
            int(bank.key[i]) if r else int(rng.choice(4, p=bank.popularity[i]))
            for i, r in zip(items, right, strict=True)
        ]

    def honest_times(self, n: int, speed: float) -> np.ndarray:
        return 12.0 * speed * self.rng.lognormal(0.0, 0.5, n)

    def add(
        self,
        label: str,
        *,
        township: int,
        submitted: datetime,
        form: int,
        choices: list[int],
        times: np.ndarray,
        user: str | None = None,
        device: str | None = None,
        ip: str | None = None,
        channel: str | None = None,
        helper: str | None = None,
        erased: bool = False,
        seconds: float | None = None,
    ) -> str:
        """One attempt document; `seconds` (issue to submit) defaults to the answering times and
        a few seconds of reading the result."""
        rng, bank = self.rng, self.bank
        user = user or self.resident()
        items = []
        for index, choice in zip(bank.forms[form], choices, strict=True):
            order = [KEYS[k] for k in rng.permutation(4)]
            chosen = [KEYS[choice]]
            mark = 1.0 if chosen == [KEYS[int(bank.key[index])]] else 0.0
            items.append(
                {
                    "question_id": f"q{index:04d}",
                    "version": 1,
                    "order": order,
                    "chosen": chosen,
                    "mark": mark,
                }
            )
        reading = float(rng.uniform(2.0, 15.0))  # drawn even when `seconds` is given
        seconds = float(times.sum() + reading) if seconds is None else seconds
        attempt_id = f"{user}:{_hash(user, submitted, label)[:8]}"
        township_code = self.county.townships[township]
        self.county.docs.append(
            {
                "_id": attempt_id,
                "user_id": None if erased else user,
                "mode": "assessment",
                "channel": channel,
                "issued_at": (submitted - timedelta(seconds=seconds)).astimezone(UTC),
                "submitted_at": submitted.astimezone(UTC),
                "profile": {"township_code": township_code, **self.demographics()},
                "items": items,
                "paradata": {
                    "seconds": round(seconds, 1),
                    "durations_ms": [round(1000 * t) for t in times],
                    "device_hash": device or _hash("device", user),
                    "ip_hash": ip or self.ip(township),
                    "helper_id": helper,
                },
            }
        )
        self.county.labels[attempt_id] = label
        return attempt_id

    def ip(self, township: int) -> str:
        if self.rng.random() < 0.7:
            return _hash("village", township, int(self.rng.integers(0, 5)))
        return _hash("carrier-nat", int(self.rng.integers(0, 4)))

    def honest(self, township: int, week: int, theta: float, **extra: Any) -> str:
        form = int(self.rng.integers(0, self.bank.forms.shape[0]))
        choices = self.honest_choices(self.bank.forms[form], theta)
        speed = float(self.rng.lognormal(0.0, 0.3)) * extra.pop("slower", 1.0)
        submitted = extra.pop("submitted", None) or self.moment(week)
        label = extra.pop("label", "honest")
        times = self.honest_times(len(choices), speed)
        attempt_id = self.add(
            label,
            township=township,
            submitted=submitted,
            form=form,
            choices=choices,
            times=times,
            **extra,
        )
        self.county.abilities[attempt_id] = theta
        return attempt_id


@dataclass(frozen=True)
class _OwnAnswers:
    """A helper answering himself (θ = HELPER_ABILITY): he knows an item or gives his own
    wrong answer to it, the same on every form, with a 3 % slip rate."""

    key: np.ndarray
    knows: np.ndarray
    wrong: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, bank: Bank) -> _OwnAnswers:
        knows = rng.random(bank.a.size) < special.expit(bank.a * (HELPER_ABILITY - bank.b))
        wrong = np.array([rng.choice(4, p=bank.popularity[i]) for i in range(bank.a.size)])
        return cls(bank.key, knows, wrong)

    def on(self, items: np.ndarray, rng: np.random.Generator) -> list[int]:
        choices = [int(self.key[i]) if self.knows[i] else int(self.wrong[i]) for i in items]
        return [int(rng.integers(0, 4)) if rng.random() < 0.03 else c for c in choices]


def _channel(rng: np.random.Generator) -> str | None:
    draw = rng.random()
    return None if draw < 0.5 else "village-qr" if draw < 0.85 else "wechat-group"


def simulate_county(spec: CountySpec, seed: int) -> County:
    rng = np.random.default_rng(seed)
    bank = make_bank(spec, rng)
    townships = [f"4502231{t + 1:02d}" for t in range(spec.townships)]
    weeks = [f"2026-W{45 + w:02d}" for w in range(spec.weeks)]
    county = County(spec, bank, townships, weeks)
    people = np.random.default_rng([seed, 1])
    build = _Builder(county, rng, people)
    ability = rng.normal(0.0, 0.25, spec.townships)
    county.ability = ability
    mix = AGE_MIX[:, None, None] * np.array([MALE, 1 - MALE])[None, :, None] * EDUCATION_MIX
    county.census = people.uniform(8_000, 40_000, spec.townships)[:, None, None, None] * mix
    rates = spec.per_week * rng.uniform(0.7, 1.3, spec.townships)

    def weekly_count(t: int) -> int:
        return int(rng.poisson(rng.gamma(spec.overdispersion, rates[t] / spec.overdispersion)))

    # History: the township-weeks before, as WeekStats only.
    for t, township in enumerate(townships):
        county.history_stats[township] = []
        for w in range(spec.history_weeks, 0, -1):
            n = weekly_count(t)
            n = max(n + int(rng.binomial(n, spec.family_share)), 2)  # families as below
            forms = bank.forms[rng.integers(0, spec.forms, n)]
            theta = rng.normal(ability[t], 1.0, n)[:, None]
            right = rng.random(forms.shape) < special.expit(bank.a[forms] * (theta - bank.b[forms]))
            scores = 100.0 * right.mean(axis=1)
            year, number, _ = (FIRST_MONDAY - timedelta(weeks=w)).isocalendar()
            county.history_stats[township].append(
                WeekStats(
                    township,
                    f"{year}-W{number:02d}",
                    n,
                    float(scores.mean()),
                    float(scores.std(ddof=1)),
                )
            )

    # Honest residents, with families and erasures.
    for t in range(spec.townships):
        for w in range(spec.weeks):
            for _ in range(weekly_count(t)):
                user = build.resident()
                device = _hash("device", user)
                build.honest(
                    t,
                    w,
                    rng.normal(ability[t], 1.0),
                    user=user,
                    device=device,
                    channel=_channel(rng),
                    erased=bool(rng.random() < 0.02),
                )
                if rng.random() < spec.family_share:
                    doc = county.docs[-1]
                    later = doc["submitted_at"] + timedelta(minutes=float(rng.uniform(5, 120)))
                    build.honest(
                        t,
                        w,
                        rng.normal(ability[t], 1.0),
                        device=device,
                        ip=doc["paradata"]["ip_hash"],
                        submitted=later,
                        channel=doc["channel"],
                    )
    for h in range(spec.triples):
        t, w = h % spec.townships, h % spec.weeks
        device = _hash("household", h)
        start = build.moment(w)
        for member in range(3):
            build.honest(
                t,
                w,
                rng.normal(ability[t], 1.0),
                device=device,
                submitted=start + timedelta(minutes=40 * member),
            )

    last = spec.weeks - 1
    # 1. A helper answers for 40 residents from one phone in two hours, with his own knowledge
    # (a cadre's, well above his residents': they would lift the township's literate share).
    t, w = 0, min(1, last)
    his = _OwnAnswers.draw(rng, bank)
    start = FIRST_MONDAY + timedelta(days=7 * w + 2, hours=19)
    device, ip = _hash("helper-phone"), _hash("village", t, 0)
    for k in range(spec.helper):
        form = int(rng.integers(0, spec.forms))
        items = bank.forms[form]
        choices = his.on(items, rng)
        times = rng.lognormal(np.log(6.0), 0.25, len(items))
        submitted = start + timedelta(minutes=3 * k + float(rng.uniform(0, 2)))
        build.add(
            "helper",
            township=t,
            submitted=submitted,
            form=form,
            choices=choices,
            times=times,
            device=device,
            ip=ip,
            channel="village-qr",
        )
    county.scenario_weeks.add((townships[t], weeks[w]))
    county.planted_jumps.add((townships[t], weeks[w], "participation"))

    # 2. A campaign that brings high scorers: honest answers, 50 of them in one hour.
    t, w = 1 % spec.townships, min(2, last)
    hall = FIRST_MONDAY + timedelta(days=7 * w + 5, hours=10)
    for k in range(spec.campaign):
        if k < spec.campaign_burst:
            submitted = hall + timedelta(seconds=float(rng.uniform(0, 3600)))
            extra: dict[str, Any] = {"ip": _hash("village", t, 1)}
        else:
            submitted = hall + timedelta(hours=float(rng.uniform(2, 60)))
            extra = {}
        build.honest(
            t,
            w,
            rng.normal(1.3, 0.5),
            label="campaign",
            channel="science-day",
            submitted=submitted,
            **extra,
        )
    county.scenario_weeks.add((townships[t], weeks[w]))
    county.planted_jumps |= {
        (townships[t], weeks[w], "participation"),
        (townships[t], weeks[w], "mean_score"),
    }

    # 3. Helper sessions: a volunteer's tablet, the elderly residents' own answers.
    t, w = 2 % spec.townships, 0
    start = FIRST_MONDAY + timedelta(days=3, hours=9)
    for k in range(spec.assisted):
        submitted = start + timedelta(minutes=15 * k + float(rng.uniform(0, 5)))
        build.honest(
            t,
            w,
            rng.normal(-0.7, 0.8),
            label="assisted",
            device=_hash("volunteer-tablet"),
            ip=_hash("village", t, 2),
            helper="vol-07",
            slower=1.5,
            submitted=submitted,
        )

    # 4. Speeders: random clicking at 1-2 s per item; some always the first shown option.
    for k in range(spec.speeders):
        t, w = int(rng.integers(0, spec.townships)), int(rng.integers(0, spec.weeks))
        form = int(rng.integers(0, spec.forms))
        lining = k < spec.straight_liners
        label = "straight_liner" if lining else "speeder"
        times = rng.uniform(1.0, 2.0, spec.form_length)
        choices = [int(rng.integers(0, 4)) for _ in range(spec.form_length)]
        build.add(
            label, township=t, submitted=build.moment(w), form=form, choices=choices, times=times
        )
        if lining:  # the first shown option, 95 % of the time
            for item in county.docs[-1]["items"]:
                if rng.random() < 0.95:
                    item["chosen"] = [item["order"][0]]
                index = int(item["question_id"][1:])
                item["mark"] = 1.0 if item["chosen"] == [KEYS[int(bank.key[index])]] else 0.0

    # 5. A group chat's answer sheet: 15 residents copy it, its 4 wrong answers included.
    t, w = 3 % spec.townships, min(2, last)
    form = 0
    items = bank.forms[form]
    p_wrong = 1 - special.expit(bank.a[items] * (1.8 - bank.b[items]))
    wrong_at = set(
        rng.choice(items.size, spec.ring_wrong, replace=False, p=p_wrong / p_wrong.sum()).tolist()
    )
    sheet = [
        int(rng.choice(4, p=bank.popularity[i])) if j in wrong_at else int(bank.key[i])
        for j, i in enumerate(items)
    ]
    posted = FIRST_MONDAY + timedelta(days=7 * w + 1, hours=12)
    for _ in range(spec.ring):
        own = build.honest_choices(items, float(rng.normal(ability[t], 1.0)))
        choices = [s if rng.random() < 0.95 else o for s, o in zip(sheet, own, strict=True)]
        times = build.honest_times(len(items), float(rng.lognormal(0.0, 0.3)))
        submitted = posted + timedelta(hours=float(rng.uniform(0, 48)))
        build.add("ring", township=t, submitted=submitted, form=form, choices=choices, times=times)
    county.scenario_weeks.add((townships[t], weeks[w]))

    # 6. A leaked key: every answer right, fast.
    for _ in range(spec.leaked):
        t, w = int(rng.integers(0, spec.townships)), int(rng.integers(0, spec.weeks))
        form = int(rng.integers(0, spec.forms))
        choices = [int(bank.key[i]) for i in bank.forms[form]]
        times = rng.uniform(3.5, 5.0, spec.form_length)
        build.add(
            "leaked", township=t, submitted=build.moment(w), form=form, choices=choices, times=times
        )

    # 7. A helper who makes sessions up: issued at 09:00, submitted from 10:00 a minute or two
    # apart, his own answers (his knowledge, the same wrong answers everywhere), 6 townships.
    his = _OwnAnswers.draw(rng, bank)
    for w in range(spec.weeks):
        issued = FIRST_MONDAY + timedelta(days=7 * w + 1, hours=9)
        submitted = issued + timedelta(hours=1)
        for k in range(spec.fabricated_per_week):
            form = int(rng.integers(0, spec.forms))
            items = bank.forms[form]
            choices = his.on(items, rng)
            submitted += timedelta(seconds=float(rng.uniform(60, 120)))
            build.add(
                "helper_fabricated",
                township=k % spec.townships,
                submitted=submitted,
                form=form,
                choices=choices,
                times=rng.lognormal(np.log(3.0), 0.3, len(items)),
                device=_hash("vol-13-tablet"),
                helper="vol-13",
                channel="assisted",
                seconds=(submitted - issued).total_seconds(),
            )

    # 8. A helper's paper forms: the residents' own answers, noted on paper and uploaded.
    t, w = 2 % spec.townships, min(1, last)
    uploaded = FIRST_MONDAY + timedelta(days=7 * w + 4, hours=16)
    for k in range(spec.paper):
        build.honest(
            t,
            w,
            rng.normal(-0.5, 0.8),
            label="paper",
            channel="paper",
            helper="vol-09",
            device=_hash("vol-09-laptop"),
            submitted=uploaded + timedelta(seconds=k),
        )
    for helper in range(spec.honest_helpers):
        _honest_helper(build, f"vol-{100 + helper}", int(rng.integers(0, spec.townships)))
    return county


def _honest_helper(build: _Builder, helper: str, township: int) -> None:
    """An honest helper's one to three days in a township: a day's sessions read aloud one after
    another (a third of helpers run two tablets side by side), or a day's paper forms uploaded
    at once. The residents' own answers, read slower than on their own phones."""
    rng, county = build.rng, build.county
    paper = rng.random() < 0.3
    tablets = 2 if rng.random() < 0.3 else 1
    for day in rng.choice(7 * county.spec.weeks, int(rng.integers(1, 4)), replace=False):
        start = FIRST_MONDAY + timedelta(days=int(day), hours=float(rng.uniform(8, 15)))
        clocks = [start] * tablets
        for k in range(int(rng.integers(6, 16))):
            lane = k % tablets
            form = int(rng.integers(0, county.bank.forms.shape[0]))
            theta = float(rng.normal(county.ability[township] - 0.5, 1.0))
            choices = build.honest_choices(county.bank.forms[form], theta)
            times = build.honest_times(len(choices), 1.3 * float(rng.lognormal(0.0, 0.3)))
            seconds = float(times.sum() + rng.uniform(2.0, 15.0))
            submitted = clocks[lane] + timedelta(seconds=seconds)
            clocks[lane] = submitted + timedelta(seconds=float(rng.uniform(30, 300)))
            attempt_id = build.add(
                "paper" if paper else "assisted",
                township=township,
                submitted=(start + timedelta(hours=8, seconds=k)) if paper else submitted,
                form=form,
                choices=choices,
                times=times,
                device=_hash(helper, "device", lane),
                helper=helper,
                channel="paper" if paper else "assisted",
                seconds=seconds,
            )
            county.abilities[attempt_id] = theta


def literate_chance(bank: Bank, theta: np.ndarray) -> np.ndarray:
    """P(percent score ≥ 70 | θ) on a form drawn at random: the exact count of right answers
    (Poisson-binomial under the 2PL model) on each form, averaged over the forms."""
    theta = np.asarray(theta, dtype=np.float64)
    chance = np.zeros(theta.shape)
    for items in bank.forms:
        right = special.expit(bank.a[items] * (theta[..., None] - bank.b[items]))
        counts = np.zeros((*theta.shape, items.size + 1))
        counts[..., 0] = 1.0
        for j in range(items.size):
            p = right[..., j : j + 1]
            counts[..., 1:] = counts[..., 1:] * (1 - p) + counts[..., :-1] * p
            counts[..., 0] *= 1 - p[..., 0]
        needed = int(np.ceil(LITERATE * items.size / 100 - 1e-9))
        chance += counts[..., needed:].sum(axis=-1)
    return chance / len(bank.forms)


def true_share(county: County) -> np.ndarray:
    """Each township population's expected literate share: P(literate | θ) integrated over its
    honest residents' θ ~ N(township mean, 1) (Gauss-Hermite), with no sampling error."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    weights = weights / weights.sum()
    return literate_chance(county.bank, county.ability[:, None] + nodes[None, :]) @ weights

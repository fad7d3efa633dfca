use chrono::{NaiveDateTime, TimeZone};

use super::*;

const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
const NEW_YORK: Tz = chrono_tz::America::New_York;
const DAY: TimeDelta = TimeDelta::days(1);
const HOUR: TimeDelta = TimeDelta::hours(1);

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A wall-clock time in Shanghai (2025-06-11 is a Wednesday).
fn sh(s: &str) -> DateTime<Utc> {
    let local: NaiveDateTime = s.parse().unwrap();
    SHANGHAI.from_local_datetime(&local).unwrap().to_utc()
}

fn rules(json: &str) -> PressureRules {
    let rules: PressureRules = serde_json::from_str(json).unwrap();
    rules.validate().unwrap();
    rules
}

fn message(kind: Kind, ready: DateTime<Utc>) -> Candidate<'static> {
    Candidate {
        tenant: "t1",
        user: "u1",
        channel: Channel::Push,
        kind,
        first_ready_at: ready,
        best_time: None,
    }
}

fn by(channel: Channel, candidate: Candidate<'static>) -> Candidate<'static> {
    Candidate {
        channel,
        ..candidate
    }
}

fn user(tz: Tz) -> UserContext<'static> {
    UserContext {
        time_zone: tz,
        hours: None,
        tenant_peak_hour: None,
    }
}

fn sent(at: DateTime<Utc>, channel: Channel, kind: Kind) -> PastSend {
    PastSend { at, channel, kind }
}

fn content(at: DateTime<Utc>) -> PastSend {
    sent(at, Channel::Push, Kind::Content)
}

fn ad(at: DateTime<Utc>) -> PastSend {
    sent(at, Channel::Push, Kind::Ad)
}

fn delay(until: DateTime<Utc>, rule: Rule) -> Decision {
    Decision::Delay { until, rule }
}

/// Decides at `now` and again at any `until` returned: a delay leads to a send then, never to the
/// same delay again.
fn decide_at(
    rules: &PressureRules,
    candidate: &Candidate,
    history: &[PastSend],
    ctx: &UserContext,
    now: DateTime<Utc>,
) -> Decision {
    let decision = decide(rules, candidate, history, ctx, now);
    if let Decision::Delay { until, .. } = decision {
        assert!(until > now, "{decision:?} at {now}");
        assert_eq!(
            decide(rules, candidate, history, ctx, until),
            Decision::Send,
            "deciding again at the end of {decision:?}"
        );
    }
    decision
}

fn in_shanghai(rules: &PressureRules, candidate: Candidate, history: &[PastSend]) -> Decision {
    decide_at(
        rules,
        &candidate,
        history,
        &user(SHANGHAI),
        candidate.first_ready_at,
    )
}

#[test]
fn default_rules_send_in_the_day() {
    let rules = PressureRules::default();
    for kind in Kind::ALL {
        assert_eq!(
            in_shanghai(&rules, message(*kind, sh("2025-06-11T10:00:00")), &[]),
            Decision::Send
        );
    }
}

#[test]
fn control_group_drops_marketing_only() {
    let rules = rules(r#"{"control_group_share": 0.15}"#);
    let users: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let (held, free): (Vec<&String>, Vec<&String>) = users
        .iter()
        .partition(|u| assign::in_control_group("t1", u, 0.15));
    assert!(!held.is_empty() && !free.is_empty());
    let at = sh("2025-06-11T10:00:00");
    let ctx = user(SHANGHAI);
    let held_content = Candidate {
        user: held[0],
        ..message(Kind::Content, at)
    };
    // The control group comes first: the drop stands even in quiet hours.
    assert_eq!(
        decide(&rules, &held_content, &[], &ctx, sh("2025-06-11T23:00:00")),
        Decision::Drop {
            rule: Rule::ControlGroup
        }
    );
    let held_service = Candidate {
        kind: Kind::Service,
        ..held_content
    };
    assert_eq!(decide(&rules, &held_service, &[], &ctx, at), Decision::Send);
    let free_ad = Candidate {
        user: free[0],
        ..message(Kind::Ad, at)
    };
    assert_eq!(decide(&rules, &free_ad, &[], &ctx, at), Decision::Send);
    let no_group = PressureRules::default();
    assert_eq!(
        decide(&no_group, &held_content, &[], &ctx, at),
        Decision::Send
    );
}

#[test]
fn quiet_hours_hold_until_they_end_across_midnight() {
    let rules = PressureRules::default();
    let morning = sh("2025-06-12T08:00:00");
    for at in [
        "2025-06-11T22:00:00",
        "2025-06-11T23:30:00",
        "2025-06-12T03:00:00",
    ] {
        assert_eq!(
            in_shanghai(&rules, message(Kind::Content, sh(at)), &[]),
            delay(morning, Rule::QuietHours),
            "{at}"
        );
    }
    assert_eq!(
        in_shanghai(&rules, message(Kind::Ad, sh("2025-06-11T21:59:00")), &[]),
        Decision::Send
    );
    let dropping = self::rules(r#"{"quiet_hours": {"action": "drop"}}"#);
    assert_eq!(
        in_shanghai(
            &dropping,
            message(Kind::Content, sh("2025-06-11T23:30:00")),
            &[]
        ),
        Decision::Drop {
            rule: Rule::QuietHours
        }
    );
    let off = self::rules(r#"{"quiet_hours": null}"#);
    assert_eq!(
        in_shanghai(&off, message(Kind::Content, sh("2025-06-11T23:30:00")), &[]),
        Decision::Send
    );
}

#[test]
fn quiet_hours_follow_dst_in_new_york() {
    let rules = PressureRules::default();
    let ny = user(NEW_YORK);
    let decide_ny = |now: &str| {
        let now = utc(now);
        decide_at(&rules, &message(Kind::Content, now), &[], &ny, now)
    };
    // 01:30 EST on the night the clocks go forward: 08:00 is EDT, 12:00 UTC, not 13:00.
    assert_eq!(
        decide_ny("2025-03-09T06:30:00Z"),
        delay(utc("2025-03-09T12:00:00Z"), Rule::QuietHours)
    );
    // 23:00 EDT on the night they go back: 08:00 is EST, 13:00 UTC, not 12:00.
    assert_eq!(
        decide_ny("2025-11-02T03:00:00Z"),
        delay(utc("2025-11-02T13:00:00Z"), Rule::QuietHours)
    );
    // 02:30 UTC is 22:30 in summer (quiet) but 21:30 in winter (not).
    assert_eq!(
        decide_ny("2025-06-12T02:30:00Z"),
        delay(utc("2025-06-12T12:00:00Z"), Rule::QuietHours)
    );
    assert_eq!(decide_ny("2025-01-15T02:30:00Z"), Decision::Send);
}

#[test]
fn service_messages_are_exempt_unless_the_tenant_says_otherwise() {
    let exempt = rules(r#"{"caps": {"per_day": 1}}"#);
    let today = [content(sh("2025-06-11T09:00:00"))];
    let service_at_night = message(Kind::Service, sh("2025-06-11T23:00:00"));
    let service_at_noon = message(Kind::Service, sh("2025-06-11T12:00:00"));
    assert_eq!(
        in_shanghai(&exempt, service_at_night, &today),
        Decision::Send
    );
    assert_eq!(
        in_shanghai(&exempt, service_at_noon, &today),
        Decision::Send
    );
    // Service messages sent do not use up the cap either.
    let notices = [sent(sh("2025-06-11T09:00:00"), Channel::Sms, Kind::Service); 3];
    let content_at_noon = message(Kind::Content, sh("2025-06-11T12:00:00"));
    assert_eq!(
        in_shanghai(&exempt, content_at_noon, &notices),
        Decision::Send
    );

    let strict = rules(
        r#"{"caps": {"per_day": 1, "service_exempt": false},
            "quiet_hours": {"applies_to_service": true}}"#,
    );
    assert_eq!(
        in_shanghai(&strict, service_at_night, &[]),
        delay(sh("2025-06-12T08:00:00"), Rule::QuietHours)
    );
    assert_eq!(
        in_shanghai(&strict, service_at_noon, &today),
        delay(sh("2025-06-12T08:00:00"), Rule::DailyCap)
    );
    assert_eq!(
        in_shanghai(&strict, content_at_noon, &notices[..1]),
        delay(sh("2025-06-12T08:00:00"), Rule::DailyCap)
    );
}

#[test]
fn daily_cap_counts_the_users_local_day_not_utcs() {
    let rules = rules(r#"{"caps": {"per_day": 1}, "quiet_hours": null}"#);
    // 23:30 and 00:30 in Shanghai are two local days, though one UTC day (15:30 and 16:30 UTC).
    let history = [content(sh("2025-06-11T23:30:00"))];
    assert_eq!(
        in_shanghai(
            &rules,
            message(Kind::Content, sh("2025-06-12T00:30:00")),
            &history
        ),
        Decision::Send
    );
    assert_eq!(
        in_shanghai(
            &rules,
            message(Kind::Content, sh("2025-06-11T23:45:00")),
            &history
        ),
        delay(sh("2025-06-12T00:00:00"), Rule::DailyCap)
    );
    // For a user on UTC the same two instants are one day.
    let history = [content(utc("2025-06-11T15:30:00Z"))];
    let at = utc("2025-06-11T16:30:00Z");
    assert_eq!(
        decide_at(
            &rules,
            &message(Kind::Content, at),
            &history,
            &user(chrono_tz::UTC),
            at
        ),
        delay(utc("2025-06-12T00:00:00Z"), Rule::DailyCap)
    );
}

#[test]
fn a_capped_message_waits_for_the_next_day_outside_quiet_hours() {
    let rules = rules(r#"{"caps": {"per_day": 1}}"#);
    let history = [content(sh("2025-06-11T09:00:00"))];
    // The next day begins at midnight, in quiet hours: the message goes when they end.
    assert_eq!(
        in_shanghai(
            &rules,
            message(Kind::Ad, sh("2025-06-11T15:00:00")),
            &history
        ),
        delay(sh("2025-06-12T08:00:00"), Rule::DailyCap)
    );
    // Dropping in quiet hours is for messages due at night, not for ones the cap moved there.
    let night_drop = self::rules(r#"{"caps": {"per_day": 1}, "quiet_hours": {"action": "drop"}}"#);
    assert_eq!(
        in_shanghai(
            &night_drop,
            message(Kind::Ad, sh("2025-06-11T15:00:00")),
            &history
        ),
        delay(sh("2025-06-12T08:00:00"), Rule::DailyCap)
    );
    let dropping = self::rules(r#"{"caps": {"per_day": 1, "action": "drop"}}"#);
    assert_eq!(
        in_shanghai(
            &dropping,
            message(Kind::Ad, sh("2025-06-11T15:00:00")),
            &history
        ),
        Decision::Drop {
            rule: Rule::DailyCap
        }
    );
}

#[test]
fn weekly_cap_waits_for_the_local_monday() {
    let rules = rules(r#"{"caps": {"per_week": 2}, "quiet_hours": null}"#);
    let history = [
        content(sh("2025-06-10T10:00:00")),
        content(sh("2025-06-15T23:30:00")),
    ];
    assert_eq!(
        in_shanghai(
            &rules,
            message(Kind::Content, sh("2025-06-15T23:40:00")),
            &history
        ),
        delay(sh("2025-06-16T00:00:00"), Rule::WeeklyCap)
    );
    // Monday starts a new week, and Sunday night's send belongs to the old one.
    let history = [
        content(sh("2025-06-15T23:30:00")),
        content(sh("2025-06-16T00:05:00")),
    ];
    assert_eq!(
        in_shanghai(
            &rules,
            message(Kind::Content, sh("2025-06-16T00:10:00")),
            &history
        ),
        Decision::Send
    );
    // A week of the daily cap: the weekly cap moves the message past the days left.
    let both = self::rules(r#"{"caps": {"per_day": 1, "per_week": 1}, "quiet_hours": null}"#);
    assert_eq!(
        in_shanghai(
            &both,
            message(Kind::Content, sh("2025-06-11T12:00:00")),
            &[content(sh("2025-06-11T09:00:00"))]
        ),
        delay(sh("2025-06-16T00:00:00"), Rule::DailyCap)
    );
}

#[test]
fn channel_caps_count_their_channel_within_the_overall_caps() {
    let rules = rules(
        r#"{"caps": {"per_day": 3, "per_channel": {"sms": {"per_day": 1, "per_week": 2}}},
            "quiet_hours": null}"#,
    );
    let noon = sh("2025-06-11T12:00:00");
    let today = [
        content(sh("2025-06-11T09:00:00")),
        sent(sh("2025-06-11T10:00:00"), Channel::Sms, Kind::Content),
    ];
    assert_eq!(
        in_shanghai(
            &rules,
            by(Channel::Sms, message(Kind::Content, noon)),
            &today
        ),
        delay(sh("2025-06-12T00:00:00"), Rule::ChannelDailyCap)
    );
    assert_eq!(
        in_shanghai(&rules, message(Kind::Content, noon), &today),
        Decision::Send
    );
    let this_week = [
        sent(sh("2025-06-09T10:00:00"), Channel::Sms, Kind::Content),
        sent(sh("2025-06-10T10:00:00"), Channel::Sms, Kind::Content),
    ];
    assert_eq!(
        in_shanghai(
            &rules,
            by(Channel::Sms, message(Kind::Content, noon)),
            &this_week
        ),
        delay(sh("2025-06-16T00:00:00"), Rule::ChannelWeeklyCap)
    );
    // The overall cap is checked first.
    let full_day = [
        content(sh("2025-06-11T08:00:00")),
        content(sh("2025-06-11T09:00:00")),
        sent(sh("2025-06-11T10:00:00"), Channel::Sms, Kind::Ad),
    ];
    assert_eq!(
        in_shanghai(
            &rules,
            by(Channel::Sms, message(Kind::Content, noon)),
            &full_day
        ),
        delay(sh("2025-06-12T00:00:00"), Rule::DailyCap)
    );
}

#[test]
fn ad_ratio_lets_the_first_ad_through_and_waits_for_older_ads_to_age_out() {
    let rules = rules(r#"{"quiet_hours": null}"#);
    let now = sh("2025-06-11T12:00:00");
    let an_ad = message(Kind::Ad, now);
    assert_eq!(in_shanghai(&rules, an_ad, &[]), Decision::Send);
    // A second ad with nothing else is 2 of 2: it waits until the first leaves the window.
    let yesterday = now - DAY;
    assert_eq!(
        in_shanghai(&rules, an_ad, &[ad(yesterday)]),
        delay(yesterday + DAY * 7, Rule::AdRatio)
    );
    assert_eq!(
        in_shanghai(&rules, message(Kind::Content, now), &[ad(yesterday)]),
        Decision::Send
    );
    // An ad a week old is out of the window; service messages never count.
    let mut history = vec![ad(now - DAY * 7 - HOUR)];
    history.extend([sent(now - HOUR, Channel::Sms, Kind::Service); 10]);
    assert_eq!(in_shanghai(&rules, an_ad, &history), Decision::Send);
    // 3 ads of 10 messages is exactly 30 %.
    let mut history = vec![ad(now - DAY * 3), ad(now - DAY * 2)];
    history.extend([content(now - DAY); 7]);
    assert_eq!(in_shanghai(&rules, an_ad, &history), Decision::Send);
    history.pop();
    assert_eq!(
        in_shanghai(&rules, an_ad, &history),
        delay(now - DAY * 3 + DAY * 7, Rule::AdRatio)
    );
}

#[test]
fn ad_ratio_waits_for_as_many_ads_as_must_leave() {
    let rules = rules(r#"{"quiet_hours": null}"#);
    let now = sh("2025-06-11T12:00:00");
    let mut history = vec![ad(now - DAY * 6), ad(now - DAY * 5)];
    history.extend([content(now - DAY); 4]);
    // 3 of 7 now; 2 of 6 once the first has left; 1 (free) once the second has.
    assert_eq!(
        in_shanghai(&rules, message(Kind::Ad, now), &history),
        delay(now + DAY * 2, Rule::AdRatio)
    );
    let dropping = self::rules(r#"{"quiet_hours": null, "ad_ratio": {"action": "drop"}}"#);
    assert_eq!(
        in_shanghai(&dropping, message(Kind::Ad, now), &history),
        Decision::Drop {
            rule: Rule::AdRatio
        }
    );
}

#[test]
fn without_free_ads_an_ad_needs_content_first() {
    let rules = rules(r#"{"quiet_hours": null, "ad_ratio": {"free_ads": 0}}"#);
    let now = sh("2025-06-11T12:00:00");
    let an_ad = message(Kind::Ad, now);
    // No waiting helps a user who has had nothing else; the ad is looked at again a day later.
    assert_eq!(
        decide(&rules, &an_ad, &[], &user(SHANGHAI), now),
        delay(now + DAY, Rule::AdRatio)
    );
    let history = [content(now - DAY); 3];
    assert_eq!(in_shanghai(&rules, an_ad, &history), Decision::Send);
}

fn hours_peaking_at(counts: &[(usize, u32)]) -> HourHistogram {
    let mut hours = HourHistogram::default();
    for &(hour, n) in counts {
        hours.0[hour] = n;
    }
    hours
}

#[test]
fn best_time_waits_for_the_users_peak_hour() {
    let rules = PressureRules::default();
    let hours = hours_peaking_at(&[(20, 8), (9, 3)]);
    let ctx = UserContext {
        hours: Some(&hours),
        ..user(SHANGHAI)
    };
    let ready = sh("2025-06-11T09:00:00");
    let candidate = Candidate {
        best_time: Some(Duration::from_secs(24 * 3_600)),
        ..message(Kind::Content, ready)
    };
    assert_eq!(
        decide_at(&rules, &candidate, &[], &ctx, ready),
        delay(sh("2025-06-11T20:00:00"), Rule::BestTime)
    );
    // Decided again later (after another rule held it), the slot has passed: no new wait.
    assert_eq!(
        decide(&rules, &candidate, &[], &ctx, sh("2025-06-11T21:30:00")),
        Decision::Send
    );
    // Ready within the peak hour: no wait.
    let in_peak = Candidate {
        first_ready_at: sh("2025-06-11T20:15:00"),
        ..candidate
    };
    assert_eq!(
        decide(&rules, &in_peak, &[], &ctx, in_peak.first_ready_at),
        Decision::Send
    );
    // The peak is further off than the campaign lets it wait.
    let short = Candidate {
        best_time: Some(Duration::from_secs(2 * 3_600)),
        ..candidate
    };
    assert_eq!(decide(&rules, &short, &[], &ctx, ready), Decision::Send);
    let no_best_time = Candidate {
        best_time: None,
        ..candidate
    };
    assert_eq!(
        decide(&rules, &no_best_time, &[], &ctx, ready),
        Decision::Send
    );
    let service = Candidate {
        kind: Kind::Service,
        ..candidate
    };
    assert_eq!(decide(&rules, &service, &[], &ctx, ready), Decision::Send);
}

#[test]
fn best_time_avoids_quiet_hours() {
    let rules = PressureRules::default();
    // Most active at 23:00, in quiet hours: the busiest hour outside them is 19:00.
    let hours = hours_peaking_at(&[(23, 40), (19, 10), (7, 20)]);
    let ctx = UserContext {
        hours: Some(&hours),
        ..user(SHANGHAI)
    };
    let ready = sh("2025-06-11T09:00:00");
    let candidate = Candidate {
        best_time: Some(Duration::from_secs(24 * 3_600)),
        ..message(Kind::Ad, ready)
    };
    assert_eq!(
        decide_at(&rules, &candidate, &[], &ctx, ready),
        delay(sh("2025-06-11T19:00:00"), Rule::BestTime)
    );
}

#[test]
fn best_time_falls_back_to_the_tenant_peak_then_to_none() {
    let rules = PressureRules::default();
    let thin = hours_peaking_at(&[(20, 9)]);
    let ready = sh("2025-06-11T09:00:00");
    let candidate = Candidate {
        best_time: Some(Duration::from_secs(24 * 3_600)),
        ..message(Kind::Content, ready)
    };
    let with_tenant_peak = UserContext {
        hours: Some(&thin),
        tenant_peak_hour: Some(12),
        ..user(SHANGHAI)
    };
    assert_eq!(
        decide_at(&rules, &candidate, &[], &with_tenant_peak, ready),
        delay(sh("2025-06-11T12:00:00"), Rule::BestTime)
    );
    // Tomorrow's 08:00 when ready after today's.
    let late = Candidate {
        first_ready_at: sh("2025-06-11T13:00:00"),
        ..candidate
    };
    let morning_peak = UserContext {
        tenant_peak_hour: Some(8),
        ..with_tenant_peak
    };
    assert_eq!(
        decide_at(&rules, &late, &[], &morning_peak, late.first_ready_at),
        delay(sh("2025-06-12T08:00:00"), Rule::BestTime)
    );
    let nothing = UserContext {
        hours: Some(&thin),
        ..user(SHANGHAI)
    };
    assert_eq!(
        decide(&rules, &candidate, &[], &nothing, ready),
        Decision::Send
    );
    let quiet_peak = UserContext {
        tenant_peak_hour: Some(23),
        ..nothing
    };
    assert_eq!(
        decide(&rules, &candidate, &[], &quiet_peak, ready),
        Decision::Send
    );
}

#[test]
fn deciding_again_at_until_never_repeats_the_delay() {
    let rules =
        rules(r#"{"caps": {"per_day": 2, "per_week": 5, "per_channel": {"sms": {"per_day": 1}}}}"#);
    let hours = hours_peaking_at(&[(23, 30), (12, 20), (21, 15)]);
    let start = sh("2025-06-09T00:00:00");
    let history: Vec<PastSend> = (0..6)
        .map(|i| {
            let kind = if i % 3 == 0 { Kind::Ad } else { Kind::Content };
            let channel = if i % 2 == 0 {
                Channel::Sms
            } else {
                Channel::Push
            };
            sent(start + HOUR * (20 * i), channel, kind)
        })
        .collect();
    let mut delays = 0;
    for step in 0..400 {
        let now = start + DAY * 5 + TimeDelta::minutes(37 * step);
        for kind in Kind::ALL {
            for channel in [Channel::Push, Channel::Sms] {
                for (hours, tenant_peak_hour) in
                    [(Some(&hours), None), (None, Some(10)), (None, None)]
                {
                    let candidate = Candidate {
                        best_time: Some(Duration::from_secs(24 * 3_600)),
                        ..by(channel, message(*kind, now))
                    };
                    let ctx = UserContext {
                        hours,
                        tenant_peak_hour,
                        ..user(SHANGHAI)
                    };
                    let past: Vec<PastSend> =
                        history.iter().copied().filter(|p| p.at <= now).collect();
                    if let Decision::Delay { .. } = decide_at(&rules, &candidate, &past, &ctx, now)
                    {
                        delays += 1;
                    }
                }
            }
        }
    }
    assert!(delays > 1_000, "only {delays} delays exercised");
}

#[test]
fn rule_names_and_descriptions() {
    for rule in Rule::ALL {
        assert_eq!(rule.as_str().parse::<Rule>().unwrap(), *rule);
        assert_eq!(rule.to_string(), rule.as_str());
        assert_eq!(
            serde_json::to_value(rule).unwrap(),
            serde_json::Value::from(rule.as_str())
        );
    }
    assert!("cap".parse::<Rule>().is_err());
    let rules = rules(
        r#"{"caps": {"per_day": 3, "per_week": 1, "per_channel": {"sms": {"per_day": 1}}},
            "control_group_share": 0.05}"#,
    );
    let say = |rule: Rule| rule.describe(&rules, Channel::Sms);
    assert_eq!(say(Rule::DailyCap), "at most 3 messages a day");
    assert_eq!(say(Rule::WeeklyCap), "at most 1 message a week");
    assert_eq!(say(Rule::ChannelDailyCap), "at most 1 message a day by sms");
    assert_eq!(
        say(Rule::QuietHours),
        "no messages between 22:00 and 08:00 on the user's clock"
    );
    assert_eq!(
        say(Rule::AdRatio),
        "ads at most 30% of the marketing messages in 7 days"
    );
    assert!(say(Rule::ControlGroup).contains("5%"));
    assert_eq!(
        Decision::Drop {
            rule: Rule::AdRatio
        }
        .rule(),
        Some(Rule::AdRatio)
    );
    assert_eq!(Decision::Send.rule(), None);
}

use super::*;
use embedded_hal_mock::eh1::digital::{Mock as Pin, State, Transaction as T};
use embedded_hal_mock::eh1::MockError;

fn panel(led: &[T], button: &[T], hook: Option<&[T]>) -> Panel<Pin, Pin, Pin> {
    Panel::new(
        Pin::new(led),
        Pin::new(button),
        hook.map(Pin::new),
        false,
        PanelTiming::default(),
    )
}

fn done(p: Panel<Pin, Pin, Pin>) {
    let (mut led, mut button, hook) = p.release();
    led.done();
    button.done();
    if let Some(mut h) = hook {
        h.done();
    }
}

#[test]
fn short_press_marks_the_call_and_the_idle_led_blinks() {
    let led = [T::set(State::High), T::set(State::Low)];
    let button = [
        T::get(State::High),
        T::get(State::High),
        T::get(State::Low),
        T::get(State::Low),
        T::get(State::Low),
        T::get(State::High),
        T::get(State::High),
    ];
    let mut p = panel(&led, &button, None);
    let events: Vec<_> = [0, 50, 100, 120, 130, 200, 240]
        .into_iter()
        .map(|t| p.tick(t).unwrap())
        .collect();
    assert_eq!(
        events,
        [
            None,
            None,
            None,
            None,
            None,
            None,
            Some(PanelEvent::MarkForReview)
        ]
    );
    done(p);
}

#[test]
fn long_press_toggles_mute_once_and_does_not_mark() {
    let led = [T::set(State::High)];
    let mut button = vec![T::get(State::Low); 4];
    button.extend([T::get(State::High), T::get(State::High)]);
    let mut p = panel(&led, &button, None);
    p.set_state(LedState::InCall, 0);
    assert_eq!(p.tick(0).unwrap(), None); // pressed (raw)
    assert_eq!(p.tick(40).unwrap(), None); // debounced: pressed at 40
    assert_eq!(p.tick(2_040).unwrap(), Some(PanelEvent::ToggleMute));
    assert_eq!(p.tick(3_000).unwrap(), None, "reported once while held");
    assert_eq!(p.tick(3_010).unwrap(), None);
    assert_eq!(
        p.tick(3_050).unwrap(),
        None,
        "release after a long press is not a mark"
    );
    done(p);
}

#[test]
fn contact_bounce_is_ignored() {
    let led = [T::set(State::High)];
    let button = [
        T::get(State::Low),
        T::get(State::High),
        T::get(State::Low),
        T::get(State::High),
        T::get(State::High),
    ];
    let mut p = panel(&led, &button, None);
    p.set_state(LedState::InCall, 0);
    for t in [0, 5, 10, 15, 100] {
        assert_eq!(p.tick(t).unwrap(), None, "at {t} ms");
    }
    done(p);
}

#[test]
fn the_hook_line_is_debounced_and_reported_both_ways() {
    let led = [T::set(State::High)];
    // Off hook = low. The hook is read first; the button is not read on a tick that
    // reports a hook change.
    let hook = [
        T::get(State::Low),
        T::get(State::Low),
        T::get(State::Low),
        T::get(State::High),
        T::get(State::High),
    ];
    let button = [
        T::get(State::High),
        T::get(State::High),
        T::get(State::High),
    ];
    let mut p = panel(&led, &button, Some(&hook));
    p.set_state(LedState::InCall, 0);
    assert_eq!(p.tick(0).unwrap(), None);
    assert_eq!(p.tick(20).unwrap(), None);
    assert_eq!(p.tick(40).unwrap(), Some(PanelEvent::Hook(true)));
    assert_eq!(p.tick(60).unwrap(), None);
    assert_eq!(p.tick(100).unwrap(), Some(PanelEvent::Hook(false)));
    done(p);
}

#[test]
fn a_failing_pin_is_an_error_that_names_the_fix() {
    let led = [T::set(State::High).with_error(MockError::Io(std::io::ErrorKind::PermissionDenied))];
    let mut p = panel(&led, &[], None);
    let e = p.tick(0).unwrap_err().to_string();
    assert!(e.contains("gpio group"), "{e}");
    done(p);
}

#[test]
fn led_patterns() {
    assert!(LedState::InCall.led_on(12_345));
    assert!(LedState::Idle.led_on(50) && !LedState::Idle.led_on(500));
    assert!(LedState::Error.led_on(0) && !LedState::Error.led_on(150));
    let on = |s: LedState| (0..2000).step_by(10).filter(|&t| s.led_on(t)).count();
    assert_eq!(on(LedState::Backlog), 100);
    assert_eq!(on(LedState::Syncing), 40);
    assert_eq!(on(LedState::Muted), 150);
    assert_eq!(on(LedState::Idle), 10);
}

#[test]
fn file_pins_follow_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let (mut led, mut button, mut hook) = file_pins(dir.path());
    led.set_high().unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("led"))
            .unwrap()
            .trim(),
        "1"
    );
    assert!(!button.is_low().unwrap());
    std::fs::write(dir.path().join("button"), "1").unwrap();
    assert!(button.is_low().unwrap());
    assert!(hook.is_high().unwrap(), "no file: on the hook");
    std::fs::write(dir.path().join("hook"), "1").unwrap();
    assert!(
        hook.is_low().unwrap(),
        "off hook reads low, like the GPIO line"
    );
}

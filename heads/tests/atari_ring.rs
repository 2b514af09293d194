//! The Atari direction ring against ale-py's own action meanings (fixture written by scripts/gen_ale_fixtures.py
//! from Gymnasium's ALE): NOOP first, FIRE last, the eight directions as a ring in between, each 45° from its
//! neighbours (the last back to the first), and each direction with FIRE eight bins after the direction alone.

use frl_heads::binning::Permutation;

/// A direction's angle in degrees (RIGHT 0, UP 90), or `None` for NOOP and FIRE.
fn angle(direction: &str) -> Option<i32> {
    let (mut x, mut y) = (0, 0);
    let mut rest = direction;
    for (word, dx, dy) in [("UP", 0, 1), ("DOWN", 0, -1), ("LEFT", -1, 0), ("RIGHT", 1, 0)] {
        if let Some(r) = rest.strip_prefix(word) {
            rest = r;
            (x, y) = (x + dx, y + dy);
        }
    }
    assert!(rest.is_empty(), "unparsed action meaning {direction:?}");
    ((x, y) != (0, 0)).then(|| (f64::from(y).atan2(f64::from(x)).to_degrees().round() as i32).rem_euclid(360))
}

#[test]
fn the_ring_follows_ale_action_meanings() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/ale_seaquest_actions.json"))
            .expect("run scripts/gen_ale_fixtures.py");
    let fixture: serde_json::Value = serde_json::from_str(&text).unwrap();
    let meanings: Vec<String> =
        fixture["action_meanings"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().to_string()).collect();
    assert_eq!(meanings.len(), 18);
    let ring = Permutation::atari_direction_ring();
    assert_eq!(ring.len(), meanings.len());

    // bin → (angle, fire)
    let mut by_bin = vec![None; 18];
    for (id, meaning) in meanings.iter().enumerate() {
        let bin = ring.bin(id).unwrap();
        let (direction, fire) = match meaning.strip_suffix("FIRE") {
            Some(d) => (d, true),
            None => (meaning.as_str(), false),
        };
        let direction = if meaning == "NOOP" { "" } else { direction };
        by_bin[bin] = Some((angle(direction), fire, meaning.clone()));
    }
    let by_bin: Vec<_> = by_bin.into_iter().map(|b| b.expect("every bin taken")).collect();
    assert_eq!(by_bin[0].2, "NOOP");
    assert_eq!(by_bin[17].2, "FIRE");
    for ring_start in [1, 9] {
        let fire = ring_start == 9;
        for k in 0..8 {
            let (a, f, m) = &by_bin[ring_start + k];
            assert_eq!(*f, fire, "bin {} holds {m}", ring_start + k);
            let next = &by_bin[ring_start + (k + 1) % 8];
            let step = (a.expect("a direction") - next.0.expect("a direction")).rem_euclid(360);
            assert!(
                step == 45 || step == 315,
                "bins {} ({m}) and {} ({}) are {step}° apart",
                ring_start + k,
                ring_start + (k + 1) % 8,
                next.2
            );
            // the direction with FIRE sits eight bins after the direction alone
            if !fire {
                assert_eq!(by_bin[ring_start + k + 8].0, *a, "{m} and bin {}", ring_start + k + 8);
            }
        }
        // one way round the ring: all steps turn the same way
        let turns: Vec<i32> = (0..8)
            .map(|k| (by_bin[ring_start + (k + 1) % 8].0.unwrap() - by_bin[ring_start + k].0.unwrap()).rem_euclid(360))
            .collect();
        assert!(turns.iter().all(|&t| t == turns[0]), "the ring turns both ways: {turns:?}");
    }
}

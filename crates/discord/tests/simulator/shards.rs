//! Shard states as the bot's metrics read them: connected, and the heartbeat
//! latency, through a dropped connection and its resume.
//!
//! A shard reconnects within milliseconds, too fast to look at reliably. So
//! the simulator runs on a runtime of its own that the test can freeze:
//! while it is frozen the shard cannot resume, and the disconnected state
//! stays put until the test looks.

use std::{sync::mpsc, thread::JoinHandle};

use guildscope_discord::{Gateway, Rest, ShardState};
use guildscope_simulator::{Fault, SimConfig, Simulator};
use tokio::runtime::Handle;

use crate::harness::{bot_config, eventually, init_tracing, sim_config, within};

/// A simulator on a current-thread runtime in a thread of its own.
struct SimThread {
    /// The simulator (dropped before its runtime stops).
    sim: Option<Simulator>,
    /// Its runtime.
    runtime: Handle,
    /// Ends the runtime when sent or dropped.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The thread.
    thread: Option<JoinHandle<()>>,
}

/// Keeps the simulator frozen until dropped.
struct Frozen {
    /// Dropping it wakes the task that blocks the simulator's thread.
    _thaw: mpsc::Sender<()>,
}

impl SimThread {
    /// Starts a simulator in its own thread.
    fn start(config: SimConfig) -> SimThread {
        let (started, receive) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let sim = Simulator::start(config).await.expect("simulator starts");
                started
                    .send((sim, Handle::current()))
                    .expect("the test waits for the simulator");
                let _ = stopped.await;
            });
        });
        let (sim, runtime) = receive.recv().expect("the simulator thread starts");
        SimThread {
            sim: Some(sim),
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The simulator.
    fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("running")
    }

    /// Blocks the simulator's only thread until the guard drops: it accepts,
    /// reads and answers nothing meanwhile.
    fn freeze(&self) -> Frozen {
        let (thaw, wait) = mpsc::channel::<()>();
        self.runtime.spawn(async move {
            // Blocking on purpose: this stops the whole simulator.
            let _ = wait.recv();
        });
        Frozen { _thaw: thaw }
    }
}

impl Drop for SimThread {
    fn drop(&mut self) {
        drop(self.sim.take());
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test]
async fn shard_states_report_latency_and_a_dropped_connection_until_the_resume() {
    init_tracing();
    let sim = SimThread::start(sim_config());
    let config = bot_config(sim.sim());
    let rest = Rest::new(&config);
    let Gateway {
        handle: gateway,
        mut events,
    } = Gateway::start(&config, &rest)
        .await
        .expect("gateway starts");
    // The shard task has not run yet on this current-thread runtime.
    assert_eq!(
        gateway.shard_states(),
        [ShardState {
            shard: 0,
            connected: false,
            latency: None,
        }]
    );
    let consumer = tokio::spawn(async move {
        while let Some(mut envelope) = events.recv().await {
            envelope.dequeued();
        }
    });
    eventually("shard 0 connected with a heartbeat latency", || {
        matches!(
            gateway.shard_states()[..],
            [ShardState {
                shard: 0,
                connected: true,
                latency: Some(_),
            }]
        )
    })
    .await;
    let stats = gateway.stats();
    assert_eq!((stats.identifies(), stats.resumes()), (1, 0));

    sim.sim()
        .inject_fault(Fault::DropConnection {
            shard: 0,
            close_code: None,
        })
        .expect("fault injected");
    // Whether the drop or the missing heartbeat ACKs of a frozen simulator
    // end the connection, the shard cannot resume until it thaws.
    let frozen = sim.freeze();
    eventually("shard 0 disconnected", || {
        !gateway.shard_states()[0].connected
    })
    .await;
    let state = gateway.shard_states()[0];
    assert!(!state.connected && state.latency.is_some(), "{state:?}");
    assert_eq!(
        stats.resumes(),
        0,
        "not resumed while the simulator is frozen"
    );

    drop(frozen);
    eventually("shard 0 connected again", || {
        gateway.shard_states()[0].connected
    })
    .await;
    assert_eq!(
        (stats.identifies(), stats.resumes()),
        (1, 1),
        "connected again by resuming the session"
    );
    assert!(gateway.shard_states()[0].latency.is_some());

    within("the gateway shuts down", gateway.shutdown()).await;
    within("the bus ends", consumer)
        .await
        .expect("the consumer does not panic");
}

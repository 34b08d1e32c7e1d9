//! The README's walkthrough, run as a reader runs it. The command blocks marked
//! `<!-- walkthrough -->` (must succeed) and `<!-- walkthrough: fails -->` (must fail)
//! are taken from README.md in order and run by one `bash -euo pipefail`, so variables
//! set by one block are there for the next, against a real `souk serve` in embedded mode
//! (SQLite in a temporary folder, free ports). The blocks' own `API` and `SOUK`
//! variables are pointed at that node and at the binary under test. curl reads a
//! configuration from the test (`fail-with-body`), so an HTTP error fails the block it is
//! in, as `set -e` makes every other failing command do. curl and jq come from
//! `scripts/test-services` (`SOUK_TEST_CURL`, `SOUK_TEST_JQ`).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::start_server;
use crate::helpers::TempDir;
use crate::openapi::checker;

/// The README the test runs (compiled in: a changed README rebuilds the test).
const README: &str = include_str!("../../../README.md");

const MARK: &str = "<!-- walkthrough -->";
const MARK_FAILS: &str = "<!-- walkthrough: fails -->";

/// One marked command block of the README.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence, 1-based.
    line: usize,
    fails: bool,
    code: String,
}

/// The marked blocks of `readme`, in order. A mark must stand right before a ```` ```sh ````
/// fence, and the block must be closed.
fn walkthrough_blocks(readme: &str) -> Vec<Block> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut index = 0;
    while index < lines.len() {
        let mark = lines[index].trim();
        let fails = match mark {
            MARK => false,
            MARK_FAILS => true,
            _ => {
                index += 1;
                continue;
            }
        };
        let fence = index + 1;
        assert_eq!(
            lines.get(fence).map(|line| line.trim()),
            Some("```sh"),
            "README.md line {}: a walkthrough mark must stand right before a ```sh block",
            index + 1
        );
        let length = lines[fence + 1..]
            .iter()
            .position(|line| line.trim() == "```")
            .unwrap_or_else(|| panic!("README.md line {}: unclosed block", fence + 1));
        let code = lines[fence + 1..fence + 1 + length].join("\n");
        blocks.push(Block {
            line: fence + 1,
            fails,
            code,
        });
        index = fence + 1 + length + 1;
    }
    blocks
}

/// One bash script running `blocks` in order in one shell: a block that must fail runs in
/// a subshell (it sees the state, keeps none) whose success ends the script.
fn script(blocks: &[Block]) -> String {
    let mut script = String::new();
    for block in blocks {
        let Block { line, fails, code } = block;
        // curl prints no newline after a body: start the marker on a line of its own.
        script += &format!("printf '\\n--- README.md line {line}\\n'\n");
        if *fails {
            script += &format!(
                "set +e\n(\nset -e\n{code}\n)\nstatus=$?\nset -e\n\
                 if [ \"$status\" = 0 ]; then\n  \
                 echo 'README.md line {line}: this block should fail, and succeeded' >&2\n  \
                 exit 1\nfi\n"
            );
        } else {
            script += code;
            script.push('\n');
        }
    }
    script.push_str("printf '\\n--- walkthrough done\\n'\n");
    script
}

/// The folder of the tool an SOUK_TEST_* variable names, for PATH.
fn tool_folder(variable: &str) -> std::path::PathBuf {
    let tool = checker(variable);
    Path::new(&tool)
        .parent()
        .unwrap_or_else(|| panic!("{variable}={tool} has no folder"))
        .to_path_buf()
}

/// Kills the node when the test ends, passed or not.
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_readme_marks_its_walkthrough_blocks() {
    let blocks = walkthrough_blocks(README);
    assert!(
        blocks.iter().filter(|block| !block.fails).count() >= 2,
        "{blocks:?}"
    );
    assert!(blocks.iter().any(|block| block.fails), "{blocks:?}");
    // The README works literally on the default port; only the variables move it.
    let first = &blocks[0].code;
    assert!(
        first.contains("API=${API:-http://127.0.0.1:8080}"),
        "{first}"
    );
    assert!(
        first.contains("SOUK=${SOUK:-target/release/souk}"),
        "{first}"
    );
    for block in &blocks {
        assert!(
            !block.code.contains("localhost:8080") && !block.code.contains("cargo run"),
            "README.md line {}: use $API and $SOUK, which the test points at its node:\n{}",
            block.line,
            block.code
        );
    }
}

#[test]
fn the_readme_walkthrough_runs_against_a_node() {
    let blocks = walkthrough_blocks(README);
    assert!(!blocks.is_empty(), "no walkthrough blocks in README.md");
    let path = format!(
        "{}:{}:{}",
        tool_folder("SOUK_TEST_CURL").display(),
        tool_folder("SOUK_TEST_JQ").display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let dir = TempDir::new();
    let (child, address, lines) = start_server(&dir.0);
    let node = Node(child);
    // The node's log goes to a pipe: keep reading it so the node never blocks on it.
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());

    std::fs::write(
        dir.0.join(".curlrc"),
        "fail-with-body\nshow-error\nmax-time = 60\n",
    )
    .unwrap();
    let mut bash = Command::new("bash");
    // As the reader's shell: no SOUK_* of the developer's, the node's data folder.
    for (key, _) in std::env::vars() {
        if key.starts_with("SOUK_") || key == "API" || key == "SOUK" {
            bash.env_remove(key);
        }
    }
    let output = bash
        .args(["-euo", "pipefail", "-c", &script(&blocks)])
        .current_dir(&dir.0)
        .env("PATH", path)
        .env("CURL_HOME", &dir.0)
        .env("SOUK_DATA_DIR", dir.0.join("data"))
        .env("SOUK_BCRYPT_COST", "4")
        .env("API", &address)
        .env("SOUK", env!("CARGO_BIN_EXE_souk"))
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    drop(node);
    let log = log.join().unwrap_or_default();
    assert!(
        output.status.success(),
        "the README walkthrough failed ({}):\n{printed}\n--- node log (last 20 lines)\n{}",
        output.status,
        log[log.len().saturating_sub(20)..].join("\n")
    );
    assert!(printed.contains("--- walkthrough done"), "{printed}");
    // What the reader sees at the end of step 6: the paid order. curl ends no body with
    // a newline, so one line may hold several bodies.
    let paid = printed
        .lines()
        .flat_map(|line| {
            serde_json::Deserializer::from_str(line)
                .into_iter::<serde_json::Value>()
                .map_while(Result::ok)
        })
        .any(|body| body["status"] == "paid" && body["items"][0]["sku"] == "SEED-000002");
    assert!(paid, "no paid order of SEED-000002 printed:\n{printed}");
}

#[test]
fn blocks_are_extracted_in_order_with_their_marks() {
    let readme = "text\n\n<!-- walkthrough -->\n```sh\nA=1\n```\n\n```sh\nnot marked\n```\n\
                  <!-- walkthrough: fails -->\n```sh\nfalse\necho $A\n```\n";
    let blocks = walkthrough_blocks(readme);
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert_eq!((blocks[0].line, blocks[0].fails), (4, false));
    assert_eq!(blocks[0].code, "A=1");
    assert_eq!((blocks[1].line, blocks[1].fails), (12, true));
    assert_eq!(blocks[1].code, "false\necho $A");
    // The failing block sees the first block's state, and its failure is the expected one.
    let run = |blocks: &[Block]| {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script(blocks)])
            .output()
            .unwrap()
    };
    let output = run(&blocks);
    assert!(output.status.success(), "{output:?}");
    // A block that must fail and does not, or a block that must pass and does not, fails
    // the script.
    let succeeding = walkthrough_blocks("<!-- walkthrough: fails -->\n```sh\ntrue\n```\n");
    assert!(!run(&succeeding).status.success());
    let failing = walkthrough_blocks("<!-- walkthrough -->\n```sh\nfalse\necho after\n```\n");
    let output = run(&failing);
    assert!(!output.status.success());
    assert!(!String::from_utf8_lossy(&output.stdout).contains("after"));
}

package dev.perfusion.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.openqa.selenium.Alert;
import org.openqa.selenium.By;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.interactions.Actions;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The page in a real headless Chromium (Debian's chromium and chromium-driver), driven by Selenium: generate and see
 * the picture, move a concept's beta slider and see the picture change, train on the shipped photos and see the run's
 * progress and the new concept, reload and find the running job again. Skips, saying so, where no browser is
 * installed. With {@code -Dperfusion.screenshots=DIR} it saves screenshots of the main views there (docs/ holds them).
 */
class BrowserTest {
    static final Path CHROMIUM = Path.of(System.getProperty("perfusion.chromium", "/usr/bin/chromium"));
    static final Path CHROMEDRIVER = Path.of(System.getProperty("perfusion.chromedriver", "/usr/bin/chromedriver"));
    static final String SCREENSHOTS = System.getProperty("perfusion.screenshots");
    /** Denoising steps of the test's pictures: few, unless screenshots for the README are taken. */
    static final int STEPS = SCREENSHOTS != null ? 25 : 5;

    @TempDir static Path tmp;
    static ServerFixture s;
    static ChromeDriver browser;
    static WebDriverWait wait;

    static boolean browserInstalled() {
        return Files.isExecutable(CHROMIUM) && Files.isExecutable(CHROMEDRIVER);
    }

    @BeforeAll
    static void start() throws IOException {
        if (!browserInstalled()) return; // each test skips, saying why
        s = new ServerFixture(tmp);
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1050",
                "--user-data-dir=" + tmp.resolve("chromium-profile"));
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile()).usingAnyFreePort().build();
        browser = new ChromeDriver(service, options);
        wait = new WebDriverWait(browser, ServerFixture.HANG_GUARD, Duration.ofMillis(50));
        wait.ignoring(StaleElementReferenceException.class); // the page redraws what it shows as events come
    }

    @AfterAll
    static void stop() {
        if (browser != null) browser.quit();
        if (s != null) s.close();
    }

    @BeforeEach
    void openThePage() {
        Assumptions.assumeTrue(browserInstalled(), "skipped: no browser for the browser tests: " + CHROMIUM + " and " + CHROMEDRIVER
                + " (Debian: apt-get install -y chromium chromium-driver; .ci/run installs them)");
        browser.get(s.base + "/");
        wait.until(d -> d.findElements(By.cssSelector("#model option")).size() > 0 && d.findElement(By.id("connection")).getText().equals("live"));
    }

    @Test
    void generateAndSeeThePicture() {
        setText("prompt", "a red car next to a green tree on the grass");
        setText("steps", Integer.toString(STEPS));
        setText("seed", "4");
        assertEquals("world", new Select(browser.findElement(By.id("model"))).getFirstSelectedOption().getAttribute("value"));
        browser.findElement(By.id("generate")).click();
        // the pictures of an earlier generation stay until the new ones come
        WebElement image = wait.until(d -> loaded(d.findElements(By.cssSelector("#images img.result-image[data-seed='4']"))));
        assertEquals(1, browser.findElements(By.cssSelector("#images img.result-image")).size());
        String parameters = browser.findElement(By.cssSelector("#images .parameters")).getText();
        assertTrue(parameters.startsWith("a red car next to a green tree on the grass") && parameters.contains("Steps: " + STEPS + ", Sampler: ddim"),
                parameters);
        WebElement download = browser.findElement(By.cssSelector("#images a.download"));
        assertTrue(download.getAttribute("href").endsWith("/00000-4.png") && download.getAttribute("download").endsWith(".png"));
    }

    @Test
    void movingAConceptsBetaSliderDrawsTheSameSeedAgain() throws IOException {
        setText("prompt", "a photo of a my-cat on the grass");
        setText("steps", Integer.toString(STEPS));
        setText("seed", "11");
        browser.findElement(By.id("use-my-cat")).click();
        WebElement slider = browser.findElement(By.id("beta-my-cat"));
        assertTrue(slider.isDisplayed(), "a chosen concept shows its slider");
        browser.findElement(By.id("generate")).click();
        WebElement first = wait.until(d -> loaded(d.findElements(By.cssSelector("#images img.result-image[data-seed='11']"))));
        String before = first.getAttribute("src");
        assertTrue(parametersShown().contains("beta [0.7]"), parametersShown());
        assertEquals("0.2", browser.findElement(By.id("concept-start")).getAttribute("value"), "the server's default concept start");
        assertEquals("8", browser.findElement(By.id("side-steering")).getAttribute("value"), "the server's default side steering");
        assertTrue(parametersShown().contains("Concept start: 0.2"), parametersShown());

        // the slider grabbed in its middle (0.5) and dragged a little to the right, released
        new Actions(browser).clickAndHold(slider).moveByOffset(18, 0).release().perform();
        long released = System.nanoTime();
        WebElement second = wait.until(d -> {
            List<WebElement> shown = d.findElements(By.cssSelector("#images img.result-image"));
            return shown.isEmpty() || shown.get(0).getAttribute("src").equals(before) ? null : loaded(shown);
        });
        double seconds = (System.nanoTime() - released) / 1e9;
        System.out.printf(Locale.ROOT, "slider release -> new picture on the page: %.2f s (%d steps)%n", seconds, STEPS);
        double beta = Double.parseDouble(slider.getAttribute("value"));
        assertTrue(beta > 0.5 && beta < 0.7, "the slider moved: " + beta);
        assertEquals("11", second.getAttribute("data-seed"), "the same seed");
        assertTrue(parametersShown().contains("Seed: 11") && parametersShown().contains("beta [" + beta + "]"), parametersShown());
        BufferedImage a = fetch(before), b = fetch(second.getAttribute("src"));
        assertTrue(ServerApiTest.differingPixels(a, b) > 0, "beta 0.7 and " + beta + " drew the same picture");
        screenshot("serve-generate.png");

        browser.findElement(By.id("sweep")).click();
        WebElement grid = wait.until(d -> {
            List<WebElement> shown = d.findElements(By.cssSelector("#images img.result-image"));
            return !shown.isEmpty() && shown.get(0).getAttribute("src").endsWith("beta-sweep.png") ? loaded(shown) : null;
        });
        Number width = (Number) ((JavascriptExecutor) browser).executeScript("return arguments[0].naturalWidth", grid);
        assertTrue(width.intValue() >= 4 * 128, "four beta columns: " + width);
        screenshot("serve-sweep.png");
    }

    @Test
    void aTrainingRunShowsItsProgressAndItsConceptJoinsTheLibrary() {
        browser.findElement(By.id("tab-train")).click();
        new Select(browser.findElement(By.id("train-examples"))).selectByValue("my-teddy");
        wait.until(d -> d.findElements(By.cssSelector("#example-thumbs img")).size() == 6);
        assertEquals("my-teddy", browser.findElement(By.id("train-word")).getAttribute("value"));
        assertEquals("teddy", browser.findElement(By.id("train-super")).getAttribute("value"));
        int steps = SCREENSHOTS != null ? 60 : 4;
        setText("train-steps", Integer.toString(steps));
        setText("train-sample-every", SCREENSHOTS != null ? "6" : "2");
        browser.findElement(By.id("train-start")).click();
        // while it runs, the page shows steps, the loss and samples as they come
        boolean screenshotTaken = false;
        while (!"done".equals(browser.findElement(By.id("train-status")).getAttribute("data-state"))) {
            String state = browser.findElement(By.id("train-status")).getAttribute("data-state");
            assertNotEquals("failed", state, browser.findElement(By.id("train-status")).getText());
            if (!screenshotTaken && "running".equals(state) && browser.findElements(By.cssSelector("#samples img")).size() >= 3) {
                screenshot("serve-train.png");
                screenshotTaken = true;
            }
            sleep(50);
        }
        assertEquals(Integer.toString(steps), browser.findElement(By.id("train-progress")).getAttribute("value"));
        assertTrue(browser.findElement(By.id("train-rate")).getText().contains("concept 'my-teddy' is in the library"));
        assertEquals(steps / (SCREENSHOTS != null ? 6 : 2), browser.findElements(By.cssSelector("#samples img.sample-image")).size(),
                "the sample pictures were shown");
        Number drawn = (Number) ((JavascriptExecutor) browser).executeScript(
                "const c = document.getElementById('loss-chart'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                        + "let blue = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 150 && d[i] < 120) blue++; return blue;");
        assertTrue(drawn.intValue() > 20, "the loss curve was drawn: " + drawn + " pixels");

        browser.findElement(By.id("tab-concepts")).click();
        WebElement row = wait.until(ExpectedConditions.presenceOfElementLocated(By.cssSelector("#concepts-table tr[data-name='my-teddy']")));
        assertTrue(row.getText().contains("teddy") && row.getText().contains("gated-rank-one"), row.getText());
        screenshot("serve-concepts.png");

        // training the same word again asks before it replaces the concept; declining leaves it
        browser.findElement(By.id("tab-train")).click();
        browser.findElement(By.id("train-start")).click();
        Alert ask = wait.until(ExpectedConditions.alertIsPresent());
        assertTrue(ask.getText().contains("already in the library"), ask.getText());
        ask.dismiss();
        wait.until(d -> d.findElement(By.id("train-error")).getText().contains("already in the library"));
        assertEquals(200, s.delete("/api/concepts/my-teddy").status());
    }

    @Test
    void aReloadedPageFindsTheRunningJobAndCanCancelIt() {
        ServerFixture.Answer submitted = s.postJson("/api/generate", ServerFixture.generation("a black dog in the forest", 3, 150));
        String id = submitted.json().get("id").asText();
        browser.navigate().refresh();
        browser.findElement(By.id("tab-jobs")).click();
        WebElement row = wait.until(d -> {
            List<WebElement> rows = d.findElements(By.cssSelector("#jobs-table tr.job-row[data-id='" + id + "']"));
            return rows.isEmpty() ? null : rows.get(0);
        });
        row.findElement(By.cssSelector("button.cancel-job")).click();
        wait.until(d -> "cancelled".equals(d.findElement(By.cssSelector("#jobs-table tr.job-row[data-id='" + id + "']")).getAttribute("data-state")));
        JsonNode job = s.get("/api/jobs/" + id).json();
        assertEquals("cancelled", job.get("state").asText());
    }

    private void setText(String id, String text) {
        WebElement e = browser.findElement(By.id(id));
        e.clear();
        e.sendKeys(text);
    }

    private String parametersShown() {
        return browser.findElement(By.cssSelector("#images .parameters")).getText();
    }

    /** The first of {@code images} once the browser has decoded it, else null. */
    private static WebElement loaded(List<WebElement> images) {
        if (images.isEmpty()) return null;
        Object ok = ((JavascriptExecutor) browser).executeScript("return arguments[0].complete && arguments[0].naturalWidth > 0", images.get(0));
        return Boolean.TRUE.equals(ok) ? images.get(0) : null;
    }

    private static BufferedImage fetch(String url) throws IOException {
        return ImageIO.read(new ByteArrayInputStream(s.get(url.substring(s.base.length())).body()));
    }

    private static void screenshot(String name) {
        if (SCREENSHOTS == null) return;
        try {
            Path target = Path.of(SCREENSHOTS).resolve(name);
            Files.createDirectories(target.getParent());
            Files.write(target, ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES));
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}

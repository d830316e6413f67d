// Geo commands through @upstash/redis.
import assert from "node:assert/strict";
import { it } from "node:test";
import { describeModes, uniq } from "./helpers.mjs";

const near = (a, b, eps = 1e-4) => Math.abs(a - b) < eps;

describeModes("geo", (client) => {
  const redis = client();

  async function seed() {
    const k = uniq("geo");
    const added = await redis.geoadd(
      k,
      { longitude: 13.361389, latitude: 38.115556, member: "Palermo" },
      { longitude: 15.087269, latitude: 37.502669, member: "Catania" },
    );
    assert.equal(added, 2);
    return k;
  }

  it("geoadd with nx / xx / ch", async () => {
    const k = await seed();
    assert.equal(
      await redis.geoadd(k, { nx: true }, { longitude: 1, latitude: 1, member: "Palermo" }),
      0,
    );
    assert.equal(
      await redis.geoadd(k, { xx: true, ch: true }, { longitude: 13.5, latitude: 38.1, member: "Palermo" }),
      1,
    );
  });

  it("geopos / geodist / geohash", async () => {
    const k = await seed();
    const pos = await redis.geopos(k, "Palermo", "Catania", "Nowhere");
    assert.equal(pos.length, 2);
    assert.ok(near(pos[0].lng, 13.361389), `lng ${pos[0].lng}`);
    assert.ok(near(pos[0].lat, 38.115556), `lat ${pos[0].lat}`);
    const km = await redis.geodist(k, "Palermo", "Catania", "KM");
    assert.equal(typeof km, "number");
    assert.ok(near(km, 166.2742, 0.01), `dist ${km}`);
    assert.equal(await redis.geodist(k, "Palermo", "Nowhere"), null);
    assert.deepEqual(await redis.geohash(k, "Palermo", "Catania"), ["sqc8b49rny0", "sqdtr74hyu0"]);
  });

  it("geosearch by radius and box, with dist / coord / hash", async () => {
    const k = await seed();
    const plain = await redis.geosearch(
      k,
      { type: "FROMLONLAT", coordinate: { lon: 15, lat: 37 } },
      { type: "BYRADIUS", radius: 200, radiusType: "KM" },
      "ASC",
    );
    assert.deepEqual(plain, [{ member: "Catania" }, { member: "Palermo" }]);

    const rich = await redis.geosearch(
      k,
      { type: "FROMMEMBER", member: "Palermo" },
      { type: "BYBOX", rect: { width: 400, height: 400 }, rectType: "KM" },
      "DESC",
      { withDist: true, withCoord: true, withHash: true, count: { limit: 2 } },
    );
    assert.equal(rich.length, 2);
    assert.equal(rich[0].member, "Catania");
    assert.ok(near(rich[0].dist, 166.2742, 0.01), `dist ${rich[0].dist}`);
    assert.equal(typeof rich[0].hash, "string");
    assert.ok(near(rich[0].coord.long, 15.087269), `long ${rich[0].coord.long}`);
    assert.equal(rich[1].member, "Palermo");
    assert.equal(rich[1].dist, 0);
  });

  it("geosearchstore", async () => {
    const k = await seed();
    const dest = uniq("geo");
    const n = await redis.geosearchstore(
      dest,
      k,
      { type: "FROMLONLAT", coordinate: { lon: 15, lat: 37 } },
      { type: "BYRADIUS", radius: 100, radiusType: "KM" },
      "ASC",
    );
    assert.equal(n, 1);
    assert.deepEqual(await redis.zrange(dest, 0, -1), ["Catania"]);
  });
});
